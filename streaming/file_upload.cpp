// POST /api/files: a streamed upload (raw or multipart) into the
// content-addressed blob store. Decisions are in docs/files.md.
//
// Blocking file I/O: the body is written to a temporary file and blobs are
// read back with plain write()/read() on the connection's I/O thread, in
// chunks of 64 KiB. Those calls hit the page cache and take microseconds,
// about what a socket send costs, so a dedicated blocking pool would cost
// more (two thread hops per chunk) than it saves. Everything that touches
// SQLite (ownership checks, rows) runs on the writer or the read pool, and
// the rename into the content address runs on the writer inside the job
// that records the rows (ordering against the garbage collector).
#include "detail/file_session.hpp"

namespace chatstream::streaming::detail
{
namespace
{

/// Bytes kept from the start of an image to read its dimensions (a JPEG's
/// SOF can follow EXIF and ICC segments of up to 64 KiB each).
constexpr std::size_t image_head_bytes = 256 * 1024;
/// A multipart body may exceed the file by its boundaries, part headers and
/// small form fields; every byte of the body counts against the limit plus
/// this allowance (issue 20, finding 8: skipped parts used to count for
/// nothing, so a chunked body had no bound).
constexpr std::uint64_t multipart_slack = 64 * 1024;

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
        {".png", "image/png"},  {".jpg", "image/jpeg"},        {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},  {".webp", "image/webp"},       {".pdf", "application/pdf"},
        {".txt", "text/plain"}, {".md", "text/markdown"},      {".markdown", "text/markdown"},
        {".csv", "text/csv"},   {".json", "application/json"}, {".mp3", "audio/mpeg"},
        {".wav", "audio/wav"},  {".ogg", "audio/ogg"},         {".m4a", "audio/mp4"}};
    auto const ext = lower(std::filesystem::path(name).extension().string());
    for (auto const& [e, m] : by_ext)
        if (ext == e)
            return m;
    return declared.empty() ? "application/octet-stream" : declared;
}

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
            return http::async_write(
                stream_, *res,
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
        http::async_read_some(
            stream_, buffer_, parser_,
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
                f.metadata =
                    json::serialize(json::object{{"width", info->width}, {"height", info->height}});
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
            { net::post(s->stream_.get_executor(), [s, ec] { s->respond(ec); }); });
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

} // namespace

void handle_file_upload(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                        header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    std::make_shared<upload_session>(std::move(stream), std::move(buffer), std::move(parser), ctx)
        ->run();
}

} // namespace chatstream::streaming::detail
