// POST /api/files (streamed upload) and GET /api/files/{storageId}
// (download with ETag and single Range): connection-owning routes
// (detail/http_routes.hpp). Decisions are in docs/files.md.
//
// Blocking file I/O: the body is written to a temporary file and blobs are
// read back with plain write()/read() on the connection's I/O thread, in
// chunks of 64 KiB. Those calls hit the page cache and take microseconds,
// about what a socket send costs, so a dedicated blocking pool would cost
// more (two thread hops per chunk) than it saves. Everything that touches
// SQLite (ownership checks, rows) runs on the writer or the read pool, and
// the rename into the content address runs on the writer inside the job
// that records the rows (ordering against the garbage collector).
#include "detail/file_routes.hpp"

#include "detail/auth.hpp"
#include "detail/http_routes.hpp"
#include "detail/http_util.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/file_name.hpp"
#include "chatstream/core/image_info.hpp"
#include "chatstream/storage/files.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/multipart.hpp"

#include <boost/asio.hpp>
#include <boost/beast.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <memory>
#include <optional>

namespace chatstream::streaming
{

std::vector<std::string> server_options::default_upload_mime_allow()
{
    return {"image/png",  "image/jpeg",      "image/gif",     "image/webp",
            "application/pdf", "text/plain", "text/markdown", "text/csv",
            "application/json", "audio/mpeg", "audio/wav",    "audio/x-wav",
            "audio/ogg",  "audio/webm",      "audio/mp4"};
}

std::string files_directory(server_options const& o)
{
    if (!o.files_dir.empty())
        return o.files_dir;
    auto const where = storage::parse_location(o.db_path);
    // Several nodes must share one --files-dir; alone, ./data/files.
    if (storage::serves_several_nodes(where.dialect))
        return "data/files";
    auto const parent = std::filesystem::path(where.target).parent_path();
    return (parent.empty() ? std::filesystem::path("files") : parent / "files").string();
}

namespace detail
{
namespace
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr std::size_t chunk_size = 64 * 1024;
/// Bytes kept from the start of an image to read its dimensions (a JPEG's
/// SOF can follow EXIF and ICC segments of up to 64 KiB each).
constexpr std::size_t image_head_bytes = 256 * 1024;
/// A multipart body may exceed the file by its boundaries, part headers and
/// small form fields; every byte of the body counts against the limit plus
/// this allowance (issue 20, finding 8: skipped parts used to count for
/// nothing, so a chunked body had no bound).
constexpr std::uint64_t multipart_slack = 64 * 1024;
constexpr auto io_timeout = std::chrono::seconds(30);

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string media_type(std::string_view content_type)
{
    auto const semi = content_type.find(';');
    auto t = content_type.substr(0, semi);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t'))
        t.remove_suffix(1);
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t'))
        t.remove_prefix(1);
    return lower(t);
}

/// Browsers send `application/octet-stream` (or nothing) for types they do
/// not know, e.g. `.md` on some systems: fall back to the extension.
std::string guess_mime(std::string const& declared, std::string const& name)
{
    if (!declared.empty() && declared != "application/octet-stream")
        return declared;
    static std::pair<char const*, char const*> const by_ext[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"},      {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},   {".webp", "image/webp"},     {".pdf", "application/pdf"},
        {".txt", "text/plain"},  {".md", "text/markdown"},    {".markdown", "text/markdown"},
        {".csv", "text/csv"},    {".json", "application/json"}, {".mp3", "audio/mpeg"},
        {".wav", "audio/wav"},   {".ogg", "audio/ogg"},       {".m4a", "audio/mp4"}};
    auto const ext = lower(std::filesystem::path(name).extension().string());
    for (auto const& [e, m] : by_ext)
        if (ext == e)
            return m;
    return declared.empty() ? "application/octet-stream" : declared;
}

/// An HTTP error decided while handling a request.
struct http_failure
{
    http::status status;
    std::string code;
    std::string message;
};

void log_fail(beast::error_code ec, char const* what)
{
    if (ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::eof || ec == http::error::end_of_stream)
        return spdlog::trace("files: {}: {}", what, ec.message());
    spdlog::debug("files: {}: {}", what, ec.message());
}

//------------------------------------------------------------------------------

/// Shared plumbing: auth + user resolution, writing a response, handing the
/// connection back (keep-alive) or closing it gracefully.
template <class Derived>
class file_session : public std::enable_shared_from_this<Derived>
{
protected:
    file_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                 std::shared_ptr<server_context> ctx)
        : stream_(std::move(stream)), buffer_(std::move(buffer)), ctx_(std::move(ctx))
    {
    }

    Derived& self() { return static_cast<Derived&>(*this); }

    /// Authenticates like /ws, resolves the user on the writer, then calls
    /// self().on_user(user_id) on this connection's strand.
    void authenticate_then(std::string_view target, std::string_view authorization)
    {
        auto auth = authenticate(target, authorization, ctx_->auth);
        if (!auth.ok)
        {
            ctx_->metrics.auth_failures.fetch_add(1, std::memory_order_relaxed);
            return fail_with({http::status::unauthorized, "unauthorized", auth.error});
        }
        ctx_->users.resolve(auth.external_id,
                            [s = this->shared_from_this()](std::error_code ec, std::string user_id)
                            {
                                net::post(s->stream_.get_executor(),
                                          [s, ec, user_id = std::move(user_id)]
                                          {
                                              if (ec)
                                                  return s->fail_with(
                                                      {http::status::internal_server_error,
                                                       "internal", "could not resolve user"});
                                              s->on_user(user_id);
                                          });
                            });
    }

    /// Answers an error. When the request body was not read to the end the
    /// connection cannot be reused: the answer says `Connection: close`.
    void fail_with(http_failure const& f)
    {
        bool const reusable = keep_alive_ && self().body_consumed();
        auto res = std::make_shared<string_response>(
            make_json_error(version_, reusable, f.status, f.code, f.message));
        if (f.status == http::status::method_not_allowed)
            res->set(http::field::allow, self().allowed_methods());
        write(std::move(res));
    }

    template <class Response>
    void write(std::shared_ptr<Response> res)
    {
        stream_.expires_after(io_timeout);
        http::async_write(stream_, *res,
                          [s = this->shared_from_this(), res](beast::error_code ec, std::size_t)
                          {
                              if (ec)
                                  return log_fail(ec, "write");
                              s->after_write(res->keep_alive());
                          });
    }

    void after_write(bool keep_alive)
    {
        if (keep_alive)
            return resume_http(std::move(stream_), std::move(buffer_), ctx_);
        linger();
    }

    /// Closes without losing the response: a peer still sending a body it
    /// was refused would otherwise get a RST that can discard our answer
    /// from its receive buffer. Half-close, then read and drop what comes
    /// for a short while (what servers call a lingering close).
    void linger()
    {
        beast::error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec)
            return;
        linger_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        do_linger();
    }

    void do_linger()
    {
        if (!linger_buf_)
            linger_buf_ = std::make_unique<char[]>(chunk_size);
        stream_.expires_at(linger_until_);
        stream_.async_read_some(net::buffer(linger_buf_.get(), chunk_size),
                                [s = this->shared_from_this()](beast::error_code ec, std::size_t)
                                {
                                    if (ec)
                                    {
                                        beast::error_code ignored;
                                        s->stream_.socket().close(ignored);
                                        return;
                                    }
                                    s->do_linger();
                                });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::shared_ptr<server_context> ctx_;
    unsigned version_ = 11;
    bool keep_alive_ = false;
    std::chrono::steady_clock::time_point linger_until_;
    std::unique_ptr<char[]> linger_buf_;
};

//------------------------------------------------------------------------------

/// POST /api/files: streams the body (raw or multipart) into a temporary
/// file while hashing it, then moves it to its content address.
class upload_session : public file_session<upload_session>
{
public:
    upload_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer, header_parser&& header,
                   std::shared_ptr<server_context> ctx)
        : file_session(std::move(stream), std::move(buffer), std::move(ctx)),
          parser_(std::move(header))
    {
    }

    void run()
    {
        net::dispatch(stream_.get_executor(),
                      beast::bind_front_handler(&upload_session::start, shared_from_this()));
    }

    bool body_consumed() const { return parser_.is_done(); }
    static char const* allowed_methods() { return "POST"; }

    void on_user(std::string const& user_id)
    {
        user_id_ = user_id;
        if (auto f = check_header())
            return fail_with(*f);
        try
        {
            blob_.emplace(ctx_->blobs.create_temp());
        }
        catch (std::exception const& e)
        {
            spdlog::error("files: cannot create a temporary file: {}", e.what());
            return fail_with(
                {http::status::internal_server_error, "internal", "cannot store the file"});
        }
        buf_ = std::make_unique<char[]>(chunk_size);
        auto const& req = parser_.get();
        // curl and browsers may wait for this before sending a big body;
        // every check that needs no body has passed by now.
        if (beast::iequals(req[http::field::expect], "100-continue"))
        {
            auto res = std::make_shared<http::response<http::empty_body>>(http::status::continue_,
                                                                          version_);
            stream_.expires_after(io_timeout);
            return http::async_write(stream_, *res,
                                     [s = shared_from_this(), res](beast::error_code ec, std::size_t)
                                     {
                                         if (ec)
                                             return log_fail(ec, "write 100-continue");
                                         s->do_read();
                                     });
        }
        do_read();
    }

private:
    void start()
    {
        auto const& req = parser_.get();
        version_ = req.version();
        keep_alive_ = req.keep_alive();
        if (req.method() != http::verb::post)
            return fail_with({http::status::method_not_allowed, "bad_request", "use POST"});
        authenticate_then(req.target(), req[http::field::authorization]);
    }

    /// Everything that can be refused before the body is read.
    std::optional<http_failure> check_header()
    {
        auto const& req = parser_.get();
        auto const limit = ctx_->options.max_upload_bytes;
        auto const content_type = req[http::field::content_type];
        body_limit_ = limit;
        if (auto boundary = multipart_parser::boundary_of(content_type))
        {
            body_limit_ = limit + multipart_slack;
            multipart_.emplace(
                *boundary, [this](multipart_parser::part const& p) { return on_part(p); },
                [this](std::string_view data) { sink(data); });
        }
        else
        {
            auto const name = query_param(req.target(), "filename");
            if (!name || name->empty())
                return http_failure{http::status::bad_request, "bad_request",
                                    "send multipart/form-data, or a raw body with "
                                    "Content-Type and ?filename="};
            name_ = core::sanitize_file_name(*name);
            mime_ = guess_mime(media_type(content_type), name_);
            if (!mime_allowed(mime_))
                return unsupported(mime_);
        }
        // Refuse an announced oversize body before reading a byte of it.
        if (auto const length = parser_.content_length(); length && *length > body_limit_)
            return body_too_large();
        // Counted here instead: the body in on_read() (chunked or not), the
        // file in sink(). Beast's own limit would end the read with an
        // error and no answer.
        parser_.body_limit(boost::none);
        return std::nullopt;
    }

    bool mime_allowed(std::string const& mime) const
    {
        auto const& allow = ctx_->options.upload_mime_allow;
        return std::find(allow.begin(), allow.end(), mime) != allow.end();
    }

    http_failure unsupported(std::string const& mime) const
    {
        return {http::status::unsupported_media_type, "bad_request",
                "file type '" + mime + "' is not accepted"};
    }

    http_failure too_large() const
    {
        return {http::status::payload_too_large, "bad_request",
                "file is larger than " + std::to_string(ctx_->options.max_upload_bytes) + " bytes"};
    }

    http_failure body_too_large() const
    {
        if (!multipart_)
            return too_large(); // a raw body is the file
        return {http::status::payload_too_large, "bad_request",
                "request body is larger than " + std::to_string(body_limit_) + " bytes"};
    }

    // Multipart: the first part with a filename is the file; other parts
    // (plain form fields, further files) are skipped.
    bool on_part(multipart_parser::part const& p)
    {
        if (file_seen_ || !p.filename)
            return false;
        file_seen_ = true;
        name_ = core::sanitize_file_name(*p.filename);
        mime_ = guess_mime(media_type(p.content_type), name_);
        if (!mime_allowed(mime_))
            throw unsupported(mime_);
        return true;
    }

    void sink(std::string_view data)
    {
        if (blob_->size() + data.size() > ctx_->options.max_upload_bytes)
            throw too_large();
        if (head_.size() < image_head_bytes && mime_.starts_with("image/"))
            head_.append(data.substr(0, image_head_bytes - head_.size()));
        blob_->write(data.data(), data.size());
    }

    void do_read()
    {
        auto& body = parser_.get().body();
        body.data = buf_.get();
        body.size = chunk_size;
        body.more = true;
        stream_.expires_after(io_timeout);
        http::async_read_some(stream_, buffer_, parser_,
                              beast::bind_front_handler(&upload_session::on_read, shared_from_this()));
    }

    void on_read(beast::error_code ec, std::size_t)
    {
        if (ec == http::error::need_buffer)
            ec = {};
        if (ec)
            return log_fail(ec, "read body"); // the peer is gone or stalled: just close
        auto const got = chunk_size - parser_.get().body().size;
        try
        {
            // The whole body counts (preamble, skipped parts, boundaries,
            // epilogue), not only the bytes that reach the file.
            body_bytes_ += got;
            if (body_bytes_ > body_limit_)
                throw body_too_large();
            std::string_view const data(buf_.get(), got);
            if (multipart_)
            {
                if (!multipart_->feed(data))
                    throw http_failure{http::status::bad_request, "bad_request",
                                       "malformed multipart body: " + multipart_->error()};
            }
            else
                sink(data);
            if (!parser_.is_done())
                return do_read();
            finish();
        }
        catch (http_failure const& f)
        {
            fail_with(f);
        }
        catch (std::exception const& e)
        {
            spdlog::error("files: upload failed: {}", e.what());
            fail_with({http::status::internal_server_error, "internal", "cannot store the file"});
        }
    }

    // The whole body is in the temporary file: validate it, then record it.
    void finish()
    {
        if (multipart_ && !multipart_->done())
            throw http_failure{http::status::bad_request, "bad_request",
                               "malformed multipart body: missing closing boundary"};
        if (multipart_ && !file_seen_)
            throw http_failure{http::status::bad_request, "bad_request",
                               "no file in the multipart body (a part with a filename)"};
        storage::files::file_row f;
        f.mime_type = mime_;
        f.size = static_cast<std::int64_t>(blob_->size());
        f.created_at = core::now_ms();
        // Images must be what they claim (the page shows them inline), and
        // their dimensions come from the header bytes.
        auto const fmt = core::sniff_image(head_);
        if (mime_ == "image/png" || mime_ == "image/jpeg" || mime_ == "image/gif" ||
            mime_ == "image/webp")
        {
            if (core::mime_of(fmt) != mime_)
                throw http_failure{http::status::unsupported_media_type, "bad_request",
                                   "the content is not a valid " + mime_ + " image"};
            if (auto info = core::read_image_header(head_))
                f.metadata = json::serialize(json::object{{"width", info->width}, {"height", info->height}});
        }
        f.storage_id = blob_->finish();
        file_ = f;
        auto blobs = &ctx_->blobs;
        ctx_->writer.submit(
            [s = shared_from_this(), blobs](storage::database& db)
            {
                // Rename and rows in one writer job: the garbage collector
                // (also a writer job) sees both or neither.
                blobs->commit(*s->blob_, s->file_.storage_id);
                storage::files::record_upload(db, s->file_, s->user_id_, s->name_, core::now_ms());
            },
            [s = shared_from_this()](std::error_code ec)
            {
                net::post(s->stream_.get_executor(), [s, ec] { s->respond(ec); });
            });
    }

    void respond(std::error_code ec)
    {
        if (ec)
        {
            spdlog::error("files: recording upload {} failed: {}", file_.storage_id, ec.message());
            return fail_with(
                {http::status::internal_server_error, "internal", "cannot store the file"});
        }
        json::object o{{"storageId", file_.storage_id},
                       {"name", name_},
                       {"mimeType", file_.mime_type},
                       {"size", file_.size},
                       {"type", core::attachment_type(file_.mime_type)}};
        o["metadata"] = file_.metadata ? json::parse(*file_.metadata) : json::value(json::object{});
        auto res = std::make_shared<string_response>(make_response(
            version_, keep_alive_, http::status::created, "application/json", json::serialize(o)));
        res->set(http::field::location, "/api/files/" + file_.storage_id);
        res->set(http::field::cache_control, "no-store");
        write(std::move(res));
    }

    http::request_parser<http::buffer_body> parser_;
    std::optional<multipart_parser> multipart_;
    bool file_seen_ = false;
    std::uint64_t body_limit_ = 0; ///< max_upload_bytes, + multipart_slack for multipart
    std::uint64_t body_bytes_ = 0; ///< decoded body bytes read so far
    std::string user_id_;
    std::string name_;
    std::string mime_;
    std::optional<storage::blob_writer> blob_;
    std::unique_ptr<char[]> buf_;
    std::string head_;
    storage::files::file_row file_;
};

//------------------------------------------------------------------------------

/// A byte range of an open file as a Beast body (Beast's file_body always
/// sends the whole file).
struct file_range_body
{
    struct value_type
    {
        beast::file file;
        std::uint64_t offset = 0;
        std::uint64_t length = 0;
    };

    static std::uint64_t size(value_type const& v) { return v.length; }

    class writer
    {
    public:
        using const_buffers_type = net::const_buffer;

        template <bool isRequest, class Fields>
        writer(http::header<isRequest, Fields>&, value_type& body) : body_(body)
        {
        }

        void init(beast::error_code& ec)
        {
            remain_ = body_.length;
            body_.file.seek(body_.offset, ec);
        }

        boost::optional<std::pair<const_buffers_type, bool>> get(beast::error_code& ec)
        {
            auto const amount = static_cast<std::size_t>(std::min<std::uint64_t>(remain_, chunk_size));
            if (amount == 0)
            {
                ec = {};
                return boost::none;
            }
            if (!buf_)
                buf_ = std::make_unique<char[]>(chunk_size);
            auto const n = body_.file.read(buf_.get(), amount, ec);
            if (ec)
                return boost::none;
            if (n == 0)
            {
                ec = http::error::short_read; // the file shrank under us
                return boost::none;
            }
            remain_ -= n;
            return {{net::const_buffer(buf_.get(), n), remain_ > 0}};
        }

    private:
        value_type& body_;
        std::uint64_t remain_ = 0;
        std::unique_ptr<char[]> buf_;
    };
};

} // namespace

} // namespace detail

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of @p size bytes.
range_result parse_range(std::string_view header, std::uint64_t size)
{
    range_result r;
    constexpr std::string_view unit = "bytes=";
    if (!header.starts_with(unit))
        return r; // other units: ignored (RFC 9110 §14.2)
    auto spec = header.substr(unit.size());
    if (spec.find(',') != std::string_view::npos)
        return r; // several ranges: the whole file is a valid answer
    auto const dash = spec.find('-');
    if (dash == std::string_view::npos)
        return r;
    auto number = [](std::string_view s, std::uint64_t& out)
    {
        if (s.empty())
            return false;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && p == s.data() + s.size();
    };
    auto const a = spec.substr(0, dash);
    auto const b = spec.substr(dash + 1);
    std::uint64_t first = 0, last = 0;
    if (a.empty())
    {
        if (!number(b, last))
            return r;
        if (last == 0 || size == 0)
            return {range_result::kind::unsatisfiable};
        first = size > last ? size - last : 0;
        return {range_result::kind::partial, first, size - 1};
    }
    if (!number(a, first))
        return r;
    if (b.empty())
        last = size ? size - 1 : 0;
    else if (!number(b, last) || last < first)
        return r;
    if (first >= size)
        return {range_result::kind::unsatisfiable};
    return {range_result::kind::partial, first, std::min(last, size - 1)};
}

namespace detail
{
namespace
{

/// GET|HEAD /api/files/{storageId}
class download_session : public file_session<download_session>
{
public:
    download_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer, header_parser&& header,
                     std::shared_ptr<server_context> ctx)
        : file_session(std::move(stream), std::move(buffer), std::move(ctx)),
          has_body_(header.chunked() ||
                    (header.content_length() && *header.content_length() > 0)),
          req_(header.release())
    {
    }

    void run()
    {
        net::dispatch(stream_.get_executor(),
                      beast::bind_front_handler(&download_session::start, shared_from_this()));
    }

    // A GET with a body is not read: the connection is not reused then.
    bool body_consumed() const { return !has_body_; }
    static char const* allowed_methods() { return "GET, HEAD"; }

    void on_user(std::string const& user_id)
    {
        if (!storage::blob_store::valid_id(storage_id_))
            return not_found();
        auto s = shared_from_this();
        ctx_->reads.post(
            [s, user_id](storage::database& db)
            {
                std::optional<storage::files::readable_file> f;
                bool failed = false;
                try
                {
                    f = storage::files::find_readable(db, user_id, s->storage_id_);
                }
                catch (std::exception const& e)
                {
                    spdlog::error("files: lookup failed: {}", e.what());
                    failed = true;
                }
                net::post(s->stream_.get_executor(),
                          [s, f = std::move(f), failed]
                          {
                              if (failed)
                                  return s->fail_with({http::status::internal_server_error,
                                                       "internal", "lookup failed"});
                              if (!f)
                                  return s->not_found();
                              s->respond(*f);
                          });
            });
    }

private:
    void start()
    {
        version_ = req_.version();
        keep_alive_ = req_.keep_alive() && !has_body_;
        if (req_.method() != http::verb::get && req_.method() != http::verb::head)
            return fail_with({http::status::method_not_allowed, "bad_request", "use GET"});
        auto const url = boost::urls::parse_origin_form(req_.target());
        std::string const path = url ? std::string(url->path()) : std::string();
        storage_id_ = path.substr(std::min(path.size(), std::string_view("/api/files/").size()));
        authenticate_then(req_.target(), req_[http::field::authorization]);
    }

    void not_found()
    {
        fail_with({http::status::not_found, "not_found", "no such file"});
    }

    template <class Body>
    void set_common(http::response<Body>& res, storage::files::readable_file const& f,
                    std::string const& etag)
    {
        res.set(http::field::server, "chatstream");
        res.set(http::field::etag, etag);
        // Content-addressed, so the bytes behind a URL never change; private
        // because only its owners may read it.
        res.set(http::field::cache_control, "private, max-age=31536000, immutable");
        res.set(http::field::accept_ranges, "bytes");
        res.keep_alive(keep_alive_);
    }

    void respond(storage::files::readable_file const& f)
    {
        auto const etag = "\"" + storage_id_ + "\"";
        auto const size = static_cast<std::uint64_t>(f.file.size);
        auto const inm = req_[http::field::if_none_match];
        if (!inm.empty() && (inm == "*" || inm.find(etag) != std::string_view::npos))
        {
            auto res = std::make_shared<http::response<http::empty_body>>(
                http::status::not_modified, version_);
            set_common(*res, f, etag);
            return write(std::move(res));
        }

        range_result range;
        if (auto const h = req_[http::field::range]; !h.empty())
        {
            // If-Range with another validator: the client's copy is stale,
            // send everything.
            auto const if_range = req_[http::field::if_range];
            if (if_range.empty() || if_range == etag)
                range = parse_range(h, size);
        }
        if (range.type == range_result::kind::unsatisfiable)
        {
            auto res = std::make_shared<string_response>(
                make_json_error(version_, keep_alive_, http::status::range_not_satisfiable,
                                "bad_request", "range not satisfiable"));
            set_common(*res, f, etag);
            res->set(http::field::content_range, "bytes */" + std::to_string(size));
            return write(std::move(res));
        }

        beast::error_code ec;
        file_range_body::value_type body;
        body.file.open(ctx_->blobs.path_of(storage_id_).c_str(), beast::file_mode::scan, ec);
        if (ec)
        {
            // Collected between the lookup and now (or lost): as if unknown.
            spdlog::warn("files: blob {} is missing: {}", storage_id_, ec.message());
            return not_found();
        }
        bool const partial = range.type == range_result::kind::partial;
        body.offset = partial ? range.first : 0;
        body.length = partial ? range.last - range.first + 1 : size;

        auto const status = partial ? http::status::partial_content : http::status::ok;
        auto set_entity = [&](auto& res)
        {
            set_common(res, f, etag);
            res.set(http::field::content_type, f.file.mime_type);
            res.set("X-Content-Type-Options", "nosniff");
            // Never run as a page of this origin, whatever the bytes are.
            res.set("Content-Security-Policy", "default-src 'none'; sandbox");
            bool const inline_ok = f.file.mime_type.starts_with("image/") ||
                                   f.file.mime_type.starts_with("audio/") ||
                                   f.file.mime_type == "application/pdf";
            res.set(http::field::content_disposition,
                    std::string(inline_ok ? "inline" : "attachment") +
                        "; filename*=UTF-8''" + percent_encode(f.name));
            if (partial)
                res.set(http::field::content_range, "bytes " + std::to_string(range.first) + "-" +
                                                        std::to_string(range.last) + "/" +
                                                        std::to_string(size));
        };
        if (req_.method() == http::verb::head)
        {
            auto res = std::make_shared<http::response<http::empty_body>>(status, version_);
            set_entity(*res);
            res->content_length(body.length);
            return write(std::move(res));
        }
        auto res = std::make_shared<http::response<file_range_body>>(
            std::piecewise_construct, std::make_tuple(std::move(body)),
            std::make_tuple(status, version_));
        set_entity(*res);
        res->prepare_payload();
        write(std::move(res));
    }

    static std::string percent_encode(std::string const& s)
    {
        static char const hex[] = "0123456789ABCDEF";
        std::string out;
        for (unsigned char c : s)
        {
            if (std::isalnum(c) || c == '.' || c == '-' || c == '_' || c == '~')
                out += static_cast<char>(c);
            else
            {
                out += '%';
                out += hex[c >> 4];
                out += hex[c & 15];
            }
        }
        return out;
    }

    bool has_body_ = false;
    http::request<http::empty_body> req_;
    std::string storage_id_;
};

} // namespace

void handle_file_upload(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                        header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    std::make_shared<upload_session>(std::move(stream), std::move(buffer), std::move(parser), ctx)
        ->run();
}

void handle_file_download(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                          header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    std::make_shared<download_session>(std::move(stream), std::move(buffer), std::move(parser),
                                       ctx)
        ->run();
}

} // namespace detail
} // namespace chatstream::streaming
