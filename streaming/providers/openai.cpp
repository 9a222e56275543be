// The `openai` provider: streaming chat completions from any OpenAI-compatible
// server, one HTTP(S) request per step, decoded from SSE with simdjson.
#include "chatstream/streaming/openai_provider.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/sse_parser.hpp"
#include "providers/openai_text.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <simdjson.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <stdexcept>

namespace chatstream::streaming
{
namespace
{

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr std::size_t max_error_body = 64 * 1024;

using namespace openai_text;

//------------------------------------------------------------------------------

// Everything a step needs from the provider, parsed once and shared
// read-only by every step (a step may outlive the provider object).
struct upstream
{
    openai_options options;
    bool tls = false;
    std::string host; // for resolve, SNI and certificate checks (no brackets)
    bool host_is_name = false;
    std::string port;
    std::string host_header;
    std::string target;
    json::array tools; // the `tools` field, built once
    std::unique_ptr<ssl::context> ssl_ctx;
};

json::array tools_field(std::vector<tool_definition> const& defs)
{
    json::array out;
    for (auto const& d : defs)
    {
        boost::system::error_code ec;
        auto schema =
            json::parse(d.parameters_json.empty() ? std::string_view("{\"type\":\"object\"}")
                                                  : std::string_view(d.parameters_json),
                        ec);
        if (ec || !schema.is_object())
            throw std::invalid_argument("tool '" + d.name +
                                        "': parameters must be a JSON Schema object");
        json::object fn{{"name", d.name}, {"parameters", std::move(schema)}};
        if (!d.description.empty())
            fn["description"] = d.description;
        out.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
    }
    return out;
}

std::shared_ptr<upstream const> make_upstream(openai_options const& o)
{
    auto u = std::make_shared<upstream>();
    u->options = o;
    auto parsed = boost::urls::parse_uri(o.base_url);
    if (!parsed)
        throw std::invalid_argument("upstream URL '" + o.base_url + "' is not a valid URL");
    auto const& url = *parsed;
    if (url.scheme_id() == boost::urls::scheme::https)
        u->tls = true;
    else if (url.scheme_id() != boost::urls::scheme::http)
        throw std::invalid_argument("upstream URL must start with http:// or https://");
    if (url.has_userinfo() || url.has_query() || url.has_fragment())
        throw std::invalid_argument(
            "upstream URL must be scheme://host[:port][/path] (no user, query or fragment)");
    u->host = url.host_address();
    if (u->host.empty())
        throw std::invalid_argument("upstream URL has no host");
    u->host_is_name = url.host_type() == boost::urls::host_type::name;
    u->port = url.has_port() ? std::string(url.port()) : (u->tls ? "443" : "80");
    u->host_header = url.encoded_host_and_port();
    std::string path(std::string_view(url.encoded_path()));
    while (!path.empty() && path.back() == '/')
        path.pop_back();
    u->target = path + (path.ends_with("/v1") ? "/chat/completions" : "/v1/chat/completions");
    u->tools = tools_field(o.tools);
    if (u->tls)
    {
        u->ssl_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        u->ssl_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1);
        boost::system::error_code ec;
        u->ssl_ctx->set_default_verify_paths(ec);
        if (ec)
            spdlog::warn("openai: no default CA paths: {}", ec.message());
        if (!o.ca_file.empty())
        {
            u->ssl_ctx->load_verify_file(o.ca_file, ec);
            if (ec)
                throw std::invalid_argument("cannot load CA file '" + o.ca_file +
                                            "': " + ec.message());
        }
        u->ssl_ctx->set_verify_mode(o.tls_verify ? ssl::verify_peer : ssl::verify_none);
    }
    return u;
}

std::string request_body(upstream const& u, provider_request const& req)
{
    auto const& o = u.options;
    json::array messages;
    bool const has_system = std::any_of(req.messages.begin(), req.messages.end(),
                                        [](chat_message const& m) { return m.role == "system"; });
    if (o.system_prompt && !o.system_prompt->empty() && !has_system)
        messages.push_back(json::object{{"role", "system"}, {"content", *o.system_prompt}});
    for (auto const& m : req.messages)
    {
        json::object msg{{"role", m.role}, {"content", m.content}};
        // DeepSeek's API refuses `reasoning_content` in the input; servers
        // whose templates want earlier thinking back take it with the flag.
        if (o.send_reasoning && m.role == "assistant" && !m.reasoning.empty())
            msg["reasoning_content"] = m.reasoning;
        messages.push_back(std::move(msg));
    }
    // Each earlier call as its own assistant/tool pair: the request does not
    // say which calls shared a step, and strict alternation is what every
    // chat template accepts.
    for (auto const& t : req.tool_results)
    {
        // Arguments the decoder wrapped as a JSON string go back as the raw
        // text the model wrote.
        std::string arguments = t.args_json;
        boost::system::error_code ec;
        if (auto v = json::parse(t.args_json, ec); !ec && v.is_string())
            arguments = std::string(v.as_string());
        json::object fn{{"name", t.name}, {"arguments", std::move(arguments)}};
        json::object call{{"id", t.id}, {"type", "function"}, {"function", std::move(fn)}};
        messages.push_back(json::object{
            {"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array{call}}});
        messages.push_back(
            json::object{{"role", "tool"}, {"tool_call_id", t.id}, {"content", t.result_json}});
    }
    json::object body;
    auto const& model = req.model && !req.model->empty() ? *req.model : o.model;
    if (!model.empty())
        body["model"] = model;
    body["stream"] = true;
    body["stream_options"] = json::object{{"include_usage", true}};
    body["messages"] = std::move(messages);
    // A title request is a short plain completion: no tools, few tokens.
    if (!u.tools.empty() && !req.title)
        body["tools"] = u.tools;
    if (req.title)
        body["max_tokens"] = 24;
    else if (o.max_output_tokens)
        body["max_tokens"] = *o.max_output_tokens;
    return json::serialize(body);
}

//------------------------------------------------------------------------------

// One step: resolve, connect, (TLS handshake), write the request, read the
// headers, then read the body piece by piece into the decoder. Lives on the
// step's executor; every handler holds it through shared_from_this().
class openai_step : public provider_stream, public std::enable_shared_from_this<openai_step>
{
public:
    openai_step(std::shared_ptr<upstream const> up, net::any_io_executor ex,
                std::shared_ptr<provider_sink> sink, int step)
        : up_(std::move(up)), resolver_(ex), connect_timer_(ex),
          decoder_(std::move(sink), step, up_->options.api_key.value_or(""),
                   up_->options.think_tags)
    {
        if (up_->tls)
            tls_.emplace(ex, *up_->ssl_ctx);
        else
            tcp_.emplace(ex);
    }

    void run(std::string body)
    {
        auto const& o = up_->options;
        req_ = {http::verb::post, up_->target, 11};
        req_.set(http::field::host, up_->host_header);
        req_.set(http::field::user_agent, "chatstream/0.1");
        req_.set(http::field::content_type, "application/json");
        req_.set(http::field::accept, "text/event-stream");
        if (o.api_key && !o.api_key->empty())
            req_.set(http::field::authorization, "Bearer " + *o.api_key);
        req_.keep_alive(false); // one request per connection: cancel is a plain close
        req_.body() = std::move(body);
        req_.prepare_payload();

        // One deadline for resolve + connect + handshake; tcp_stream's own
        // timer cannot cover the resolver.
        connect_timer_.expires_after(o.connect_timeout);
        connect_timer_.async_wait(
            [self = shared_from_this()](beast::error_code ec)
            {
                if (ec || self->connected_ || self->cancelled_)
                    return;
                self->connect_timed_out_ = true;
                self->resolver_.cancel();
                self->lowest().close();
            });
        resolver_.async_resolve(
            up_->host, up_->port,
            beast::bind_front_handler(&openai_step::on_resolve, shared_from_this()));
    }

    void cancel() override
    {
        // Runs on the step's executor (provider_stream contract): close now,
        // the pending handlers then see operation_aborted and return.
        cancelled_ = true;
        decoder_.detach();
        connect_timer_.cancel();
        resolver_.cancel();
        lowest().close();
    }

private:
    beast::tcp_stream& lowest() { return tls_ ? beast::get_lowest_layer(*tls_) : *tcp_; }

    template <class F> void with_stream(F&& f)
    {
        if (tls_)
            f(*tls_);
        else
            f(*tcp_);
    }

    bool stopped() const { return cancelled_ || decoder_.done(); }

    void on_resolve(beast::error_code ec, tcp::resolver::results_type results)
    {
        if (stopped())
            return;
        if (ec)
            return fail(ec, "resolve");
        lowest().expires_never(); // connect_timer_ owns this phase
        lowest().async_connect(
            results, beast::bind_front_handler(&openai_step::on_connect, shared_from_this()));
    }

    void on_connect(beast::error_code ec, tcp::endpoint)
    {
        if (stopped())
            return;
        if (ec)
            return fail(ec, "connect");
        beast::error_code ignored;
        lowest().socket().set_option(tcp::no_delay(true), ignored);
        if (!tls_)
            return on_connected();

        // SNI (never for an IP literal, RFC 6066) and the host name check.
        if (up_->host_is_name &&
            !SSL_set_tlsext_host_name(tls_->native_handle(), up_->host.c_str()))
            return fail(beast::error_code(static_cast<int>(::ERR_get_error()),
                                          net::error::get_ssl_category()),
                        "handshake");
        if (up_->options.tls_verify)
            tls_->set_verify_callback(ssl::host_name_verification(up_->host));
        tls_->async_handshake(
            ssl::stream_base::client,
            beast::bind_front_handler(&openai_step::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec)
    {
        if (stopped())
            return;
        if (ec)
            return fail(ec, "handshake");
        on_connected();
    }

    void on_connected()
    {
        connected_ = true;
        connect_timer_.cancel();
        lowest().expires_after(up_->options.request_timeout);
        with_stream(
            [&](auto& s)
            {
                http::async_write(
                    s, req_, beast::bind_front_handler(&openai_step::on_write, shared_from_this()));
            });
    }

    void on_write(beast::error_code ec, std::size_t)
    {
        if (stopped())
            return;
        if (ec)
            return fail(ec, "write");
        parser_.emplace();
        parser_->body_limit(up_->options.max_response_bytes);
        lowest().expires_after(up_->options.request_timeout);
        with_stream(
            [&](auto& s)
            {
                http::async_read_header(
                    s, buffer_, *parser_,
                    beast::bind_front_handler(&openai_step::on_header, shared_from_this()));
            });
    }

    void on_header(beast::error_code ec, std::size_t)
    {
        if (stopped())
            return;
        if (ec)
            return fail(ec, "read header");
        auto const& res = parser_->get();
        status_ = res.result_int();
        auto const type = res[http::field::content_type];
        // An error status, or a 200 that is plain JSON (a server that does
        // not stream): read the body whole and turn it into a message.
        error_mode_ = status_ != 200 || type.starts_with("application/json");
        retry_after_ = std::string(res[http::field::retry_after]);
        if (status_ != 200)
            spdlog::warn("openai: upstream {}{} answered HTTP {}", up_->host_header, up_->target,
                         status_);
        if (parser_->is_done())
            return end_of_body(); // e.g. Content-Length: 0
        do_read_body();
    }

    void do_read_body()
    {
        auto& body = parser_->get().body();
        body.data = chunk_.data();
        body.size = chunk_.size();
        lowest().expires_after(up_->options.request_timeout);
        with_stream(
            [&](auto& s)
            {
                http::async_read_some(
                    s, buffer_, *parser_,
                    beast::bind_front_handler(&openai_step::on_body, shared_from_this()));
            });
    }

    void on_body(beast::error_code ec, std::size_t)
    {
        if (stopped())
            return;
        if (ec == http::error::need_buffer)
            ec = {}; // our chunk_ is full: consume it
        auto const n = chunk_.size() - parser_->get().body().size;
        std::string_view const bytes(chunk_.data(), n);
        if (error_mode_)
        {
            error_body_.append(
                bytes.substr(0, max_error_body - std::min(max_error_body, error_body_.size())));
            // A failed or oversized error body still gives the status message.
            if (ec || parser_->is_done() || error_body_.size() >= max_error_body)
                return fail_status();
            return do_read_body();
        }
        decoder_.feed(bytes);
        if (stopped())
            return close();
        if (ec)
            return fail(ec, "read body");
        if (parser_->is_done())
            return end_of_body();
        do_read_body();
    }

    void end_of_body()
    {
        if (error_mode_)
            return fail_status();
        decoder_.end_of_stream();
        close();
    }

    void fail_status()
    {
        decoder_.fail(openai_http_error_message(status_, error_body_, retry_after_,
                                                up_->options.api_key.value_or("")));
        close();
    }

    // The one place a transport error becomes the step's error. Operators get
    // the detail in the log; the user gets a sentence without host names.
    void fail(beast::error_code ec, std::string_view what)
    {
        if (stopped())
            return;
        std::string msg;
        auto const ms = [](std::chrono::milliseconds d)
        { return std::to_string(d.count()) + " ms"; };
        if (connect_timed_out_)
            msg = "upstream connect timed out after " + ms(up_->options.connect_timeout);
        else if (ec == beast::error::timeout)
            msg = "upstream timed out: nothing received for " + ms(up_->options.request_timeout);
        else if (what == "resolve")
            msg = "cannot resolve the upstream host: " + ec.message();
        else if (what == "connect")
            msg = "cannot connect to the upstream: " + ec.message();
        else if (what == "handshake")
            msg = "TLS handshake with the upstream failed: " + ec.message();
        else if (what == "write")
            msg = "could not send the request upstream: " + ec.message();
        else if (ec == http::error::partial_message || ec == http::error::end_of_stream ||
                 ec == net::error::eof || ec == ssl::error::stream_truncated)
            msg = what == "read header"
                      ? "upstream closed the connection without answering"
                      : "upstream closed the connection in the middle of the answer";
        else if (ec == http::error::body_limit)
            msg = "upstream answer is larger than " +
                  std::to_string(up_->options.max_response_bytes) + " bytes";
        else
            msg = "upstream connection lost: " + ec.message();
        // operation_aborted here is our own timer closing the socket.
        spdlog::warn("openai: {} {}{}: {} ({})", what, up_->host_header, up_->target, ec.message(),
                     msg);
        decoder_.fail(msg);
        close();
    }

    void close()
    {
        // No TLS close_notify: the connection is never reused and the answer
        // is complete (or abandoned), so a plain close is enough and instant.
        connect_timer_.cancel();
        lowest().close();
    }

    std::shared_ptr<upstream const> up_;
    tcp::resolver resolver_;
    net::steady_timer connect_timer_;
    std::optional<beast::tcp_stream> tcp_;
    std::optional<beast::ssl_stream<beast::tcp_stream>> tls_;
    http::request<http::string_body> req_;
    beast::flat_buffer buffer_;
    std::optional<http::response_parser<http::buffer_body>> parser_;
    std::array<char, 16 * 1024> chunk_{};
    openai_stream_decoder decoder_;
    unsigned status_ = 0;
    bool error_mode_ = false;
    std::string error_body_;
    std::string retry_after_;
    bool connected_ = false;
    bool connect_timed_out_ = false;
    bool cancelled_ = false;
};

class openai_provider : public provider
{
public:
    explicit openai_provider(openai_options const& o) : up_(make_upstream(o)) {}

    std::shared_ptr<provider_stream> start(net::any_io_executor ex, provider_request request,
                                           std::shared_ptr<provider_sink> sink) override
    {
        auto step = std::make_shared<openai_step>(up_, ex, std::move(sink), request.step);
        // Initiating functions only: the sink hears nothing before start returns.
        step->run(request_body(*up_, request));
        return step;
    }

private:
    std::shared_ptr<upstream const> up_;
};

} // namespace

//------------------------------------------------------------------------------

std::unique_ptr<provider> make_openai_provider(openai_options const& options)
{
    return std::make_unique<openai_provider>(options);
}

std::string openai_request_body(openai_options const& options, provider_request const& request)
{
    upstream u;
    u.options = options;
    u.tools = tools_field(options.tools);
    return request_body(u, request);
}

std::string openai_http_error_message(unsigned status, std::string_view body,
                                      std::string_view retry_after, std::string_view secret)
{
    auto const code = " (HTTP " + std::to_string(status) + ")";
    auto quoted = redact(upstream_message(body), secret);
    auto const with = [&](std::string head)
    { return quoted.empty() ? head : head + ": " + quoted; };
    switch (status)
    {
    case 200:
        return with("upstream answered without streaming" + code);
    // The upstream's text for a refused key may echo part of it: never quoted.
    case 401:
        return "upstream rejected the API key" + code + "; the server's key is missing or invalid";
    case 403:
        return "upstream refused access" + code;
    case 404:
        return with("upstream has no such model or endpoint" + code);
    case 408:
        return "upstream timed out" + code;
    case 413:
        return "the conversation is too large for the upstream" + code;
    case 429:
    {
        std::string head = "upstream rate limit reached" + code;
        if (auto const r = trim(retry_after);
            !r.empty() && r.size() < 32 && std::isdigit(static_cast<unsigned char>(r[0])))
            head += ", retry after " + std::string(r) + " s";
        return with(head);
    }
    default:
        break;
    }
    if (status >= 400 && status < 500)
        return with("upstream rejected the request" + code);
    if (status >= 500 && status < 600)
        return with("upstream error" + code);
    return with("unexpected upstream answer" + code);
}

} // namespace chatstream::streaming
