// GET|HEAD /api/files/{storageId}: a download with ETag and a single byte
// range. Decisions are in docs/files.md.
#include "detail/file_session.hpp"

namespace chatstream::streaming::detail
{
namespace
{

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
            auto const amount =
                static_cast<std::size_t>(std::min<std::uint64_t>(remain_, chunk_size));
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

/// GET|HEAD /api/files/{storageId}
class download_session : public file_session<download_session>
{
public:
    download_session(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                     header_parser&& header, std::shared_ptr<server_context> ctx)
        : file_session(std::move(stream), std::move(buffer), std::move(ctx)),
          has_body_(header.chunked() || (header.content_length() && *header.content_length() > 0)),
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

    void not_found() { fail_with({http::status::not_found, "not_found", "no such file"}); }

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
                    std::string(inline_ok ? "inline" : "attachment") + "; filename*=UTF-8''" +
                        percent_encode(f.name));
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

void handle_file_download(beast::tcp_stream&& stream, beast::flat_buffer&& buffer,
                          header_parser&& parser, std::shared_ptr<server_context> const& ctx)
{
    std::make_shared<download_session>(std::move(stream), std::move(buffer), std::move(parser), ctx)
        ->run();
}

} // namespace chatstream::streaming::detail
