// The `openai` provider: streaming chat completions from any OpenAI-compatible
// server, one HTTP(S) request per step, decoded from SSE with simdjson.
#include "chatstream/streaming/openai_provider.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/sse_parser.hpp"

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

namespace chatstream::streaming {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
namespace json = boost::json;
using tcp = net::ip::tcp;

constexpr std::size_t max_error_body = 64 * 1024;
constexpr std::size_t max_quoted_message = 300;

// Removes @p secret from text that may reach a user or a log.
std::string redact(std::string text, std::string_view secret)
{
    if (secret.size() < 4) return text;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + 3))
        text.replace(at, secret.size(), "***");
    return text;
}

// At most max_quoted_message bytes of @p s, cut on a code point boundary.
std::string shorten(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    if (s.size() <= max_quoted_message) return std::string(s);
    auto const head = s.substr(0, max_quoted_message);
    return std::string(head.substr(0, core::complete_utf8_prefix(head))) + "…";
}

// The human-readable message of an OpenAI-style error value: `{"message"}`,
// a plain string, or FastAPI's `detail`.
std::string error_text(json::value const& v)
{
    if (v.is_string()) return std::string(v.as_string());
    if (!v.is_object()) return {};
    auto const& o = v.as_object();
    for (auto key : {"message", "detail", "error"})
        if (auto const* m = o.if_contains(key))
        {
            if (m->is_string()) return std::string(m->as_string());
            if (auto nested = error_text(*m); !nested.empty()) return nested;
        }
    return {};
}

// What an error body says, if it says something quotable (never HTML).
std::string upstream_message(std::string_view body)
{
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (!ec) return shorten(error_text(v));
    auto const trimmed = shorten(body);
    if (trimmed.empty() || trimmed.front() == '<' || !core::is_valid_utf8(trimmed)) return {};
    return trimmed;
}

std::string map_finish_reason(std::string_view r)
{
    if (r == "stop") return "stop";
    if (r == "length") return "length";
    if (r == "tool_calls" || r == "function_call") return "tool-calls";
    if (r == "content_filter") return "content-filter";
    return "other";
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

//------------------------------------------------------------------------------

// Everything a step needs from the provider, parsed once and shared
// read-only by every step (a step may outlive the provider object).
struct upstream
{
    openai_options options;
    bool tls = false;
    std::string host;        // for resolve, SNI and certificate checks (no brackets)
    bool host_is_name = false;
    std::string port;
    std::string host_header;
    std::string target;
    json::array tools;       // the `tools` field, built once
    std::unique_ptr<ssl::context> ssl_ctx;
};

json::array tools_field(std::vector<tool_definition> const& defs)
{
    json::array out;
    for (auto const& d : defs)
    {
        boost::system::error_code ec;
        auto schema = json::parse(d.parameters_json.empty() ? std::string_view("{\"type\":\"object\"}")
                                                             : std::string_view(d.parameters_json),
                                  ec);
        if (ec || !schema.is_object())
            throw std::invalid_argument("tool '" + d.name + "': parameters must be a JSON Schema object");
        json::object fn{{"name", d.name}, {"parameters", std::move(schema)}};
        if (!d.description.empty()) fn["description"] = d.description;
        out.push_back(json::object{{"type", "function"}, {"function", std::move(fn)}});
    }
    return out;
}

std::shared_ptr<upstream const> make_upstream(openai_options const& o)
{
    auto u = std::make_shared<upstream>();
    u->options = o;
    auto parsed = boost::urls::parse_uri(o.base_url);
    if (!parsed) throw std::invalid_argument("upstream URL '" + o.base_url + "' is not a valid URL");
    auto const& url = *parsed;
    if (url.scheme_id() == boost::urls::scheme::https)
        u->tls = true;
    else if (url.scheme_id() != boost::urls::scheme::http)
        throw std::invalid_argument("upstream URL must start with http:// or https://");
    if (url.has_userinfo() || url.has_query() || url.has_fragment())
        throw std::invalid_argument("upstream URL must be scheme://host[:port][/path] (no user, query or fragment)");
    u->host = url.host_address();
    if (u->host.empty()) throw std::invalid_argument("upstream URL has no host");
    u->host_is_name = url.host_type() == boost::urls::host_type::name;
    u->port = url.has_port() ? std::string(url.port()) : (u->tls ? "443" : "80");
    u->host_header = url.encoded_host_and_port();
    std::string path(std::string_view(url.encoded_path()));
    while (!path.empty() && path.back() == '/') path.pop_back();
    u->target = path + (path.ends_with("/v1") ? "/chat/completions" : "/v1/chat/completions");
    u->tools = tools_field(o.tools);
    if (u->tls)
    {
        u->ssl_ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
        u->ssl_ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                                ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
        boost::system::error_code ec;
        u->ssl_ctx->set_default_verify_paths(ec);
        if (ec) spdlog::warn("openai: no default CA paths: {}", ec.message());
        if (!o.ca_file.empty())
        {
            u->ssl_ctx->load_verify_file(o.ca_file, ec);
            if (ec) throw std::invalid_argument("cannot load CA file '" + o.ca_file + "': " + ec.message());
        }
        u->ssl_ctx->set_verify_mode(o.tls_verify ? ssl::verify_peer : ssl::verify_none);
    }
    return u;
}

std::string request_body(upstream const& u, provider_request const& req)
{
    auto const& o = u.options;
    json::array messages;
    bool const has_system =
        std::any_of(req.messages.begin(), req.messages.end(), [](chat_message const& m) { return m.role == "system"; });
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
        if (auto v = json::parse(t.args_json, ec); !ec && v.is_string()) arguments = std::string(v.as_string());
        json::object fn{{"name", t.name}, {"arguments", std::move(arguments)}};
        json::object call{{"id", t.id}, {"type", "function"}, {"function", std::move(fn)}};
        messages.push_back(json::object{{"role", "assistant"}, {"content", nullptr}, {"tool_calls", json::array{call}}});
        messages.push_back(json::object{{"role", "tool"}, {"tool_call_id", t.id}, {"content", t.result_json}});
    }
    json::object body;
    auto const& model = req.model && !req.model->empty() ? *req.model : o.model;
    if (!model.empty()) body["model"] = model;
    body["stream"] = true;
    body["stream_options"] = json::object{{"include_usage", true}};
    body["messages"] = std::move(messages);
    // A title request is a short plain completion: no tools, few tokens.
    if (!u.tools.empty() && !req.title) body["tools"] = u.tools;
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
    openai_step(std::shared_ptr<upstream const> up, net::any_io_executor ex, std::shared_ptr<provider_sink> sink,
                int step)
        : up_(std::move(up)), resolver_(ex), connect_timer_(ex),
          decoder_(std::move(sink), step, up_->options.api_key.value_or(""), up_->options.think_tags)
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
        if (o.api_key && !o.api_key->empty()) req_.set(http::field::authorization, "Bearer " + *o.api_key);
        req_.keep_alive(false); // one request per connection: cancel is a plain close
        req_.body() = std::move(body);
        req_.prepare_payload();

        // One deadline for resolve + connect + handshake; tcp_stream's own
        // timer cannot cover the resolver.
        connect_timer_.expires_after(o.connect_timeout);
        connect_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
            if (ec || self->connected_ || self->cancelled_) return;
            self->connect_timed_out_ = true;
            self->resolver_.cancel();
            self->lowest().close();
        });
        resolver_.async_resolve(up_->host, up_->port,
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

    template <class F>
    void with_stream(F&& f)
    {
        if (tls_)
            f(*tls_);
        else
            f(*tcp_);
    }

    bool stopped() const { return cancelled_ || decoder_.done(); }

    void on_resolve(beast::error_code ec, tcp::resolver::results_type results)
    {
        if (stopped()) return;
        if (ec) return fail(ec, "resolve");
        lowest().expires_never(); // connect_timer_ owns this phase
        lowest().async_connect(results, beast::bind_front_handler(&openai_step::on_connect, shared_from_this()));
    }

    void on_connect(beast::error_code ec, tcp::endpoint)
    {
        if (stopped()) return;
        if (ec) return fail(ec, "connect");
        beast::error_code ignored;
        lowest().socket().set_option(tcp::no_delay(true), ignored);
        if (!tls_) return on_connected();

        // SNI (never for an IP literal, RFC 6066) and the host name check.
        if (up_->host_is_name && !SSL_set_tlsext_host_name(tls_->native_handle(), up_->host.c_str()))
            return fail(beast::error_code(static_cast<int>(::ERR_get_error()), net::error::get_ssl_category()),
                        "handshake");
        if (up_->options.tls_verify) tls_->set_verify_callback(ssl::host_name_verification(up_->host));
        tls_->async_handshake(ssl::stream_base::client,
                              beast::bind_front_handler(&openai_step::on_handshake, shared_from_this()));
    }

    void on_handshake(beast::error_code ec)
    {
        if (stopped()) return;
        if (ec) return fail(ec, "handshake");
        on_connected();
    }

    void on_connected()
    {
        connected_ = true;
        connect_timer_.cancel();
        lowest().expires_after(up_->options.request_timeout);
        with_stream([&](auto& s) {
            http::async_write(s, req_, beast::bind_front_handler(&openai_step::on_write, shared_from_this()));
        });
    }

    void on_write(beast::error_code ec, std::size_t)
    {
        if (stopped()) return;
        if (ec) return fail(ec, "write");
        parser_.emplace();
        parser_->body_limit(up_->options.max_response_bytes);
        lowest().expires_after(up_->options.request_timeout);
        with_stream([&](auto& s) {
            http::async_read_header(s, buffer_, *parser_,
                                    beast::bind_front_handler(&openai_step::on_header, shared_from_this()));
        });
    }

    void on_header(beast::error_code ec, std::size_t)
    {
        if (stopped()) return;
        if (ec) return fail(ec, "read header");
        auto const& res = parser_->get();
        status_ = res.result_int();
        auto const type = res[http::field::content_type];
        // An error status, or a 200 that is plain JSON (a server that does
        // not stream): read the body whole and turn it into a message.
        error_mode_ = status_ != 200 || type.starts_with("application/json");
        retry_after_ = std::string(res[http::field::retry_after]);
        if (status_ != 200)
            spdlog::warn("openai: upstream {}{} answered HTTP {}", up_->host_header, up_->target, status_);
        if (parser_->is_done()) return end_of_body(); // e.g. Content-Length: 0
        do_read_body();
    }

    void do_read_body()
    {
        auto& body = parser_->get().body();
        body.data = chunk_.data();
        body.size = chunk_.size();
        lowest().expires_after(up_->options.request_timeout);
        with_stream([&](auto& s) {
            http::async_read_some(s, buffer_, *parser_,
                                  beast::bind_front_handler(&openai_step::on_body, shared_from_this()));
        });
    }

    void on_body(beast::error_code ec, std::size_t)
    {
        if (stopped()) return;
        if (ec == http::error::need_buffer) ec = {}; // our chunk_ is full: consume it
        auto const n = chunk_.size() - parser_->get().body().size;
        std::string_view const bytes(chunk_.data(), n);
        if (error_mode_)
        {
            error_body_.append(bytes.substr(0, max_error_body - std::min(max_error_body, error_body_.size())));
            // A failed or oversized error body still gives the status message.
            if (ec || parser_->is_done() || error_body_.size() >= max_error_body) return fail_status();
            return do_read_body();
        }
        decoder_.feed(bytes);
        if (stopped()) return close();
        if (ec) return fail(ec, "read body");
        if (parser_->is_done()) return end_of_body();
        do_read_body();
    }

    void end_of_body()
    {
        if (error_mode_) return fail_status();
        decoder_.end_of_stream();
        close();
    }

    void fail_status()
    {
        decoder_.fail(
            openai_http_error_message(status_, error_body_, retry_after_, up_->options.api_key.value_or("")));
        close();
    }

    // The one place a transport error becomes the step's error. Operators get
    // the detail in the log; the user gets a sentence without host names.
    void fail(beast::error_code ec, std::string_view what)
    {
        if (stopped()) return;
        std::string msg;
        auto const ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
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
        else if (ec == http::error::partial_message || ec == http::error::end_of_stream || ec == net::error::eof ||
                 ec == ssl::error::stream_truncated)
            msg = what == "read header" ? "upstream closed the connection without answering"
                                        : "upstream closed the connection in the middle of the answer";
        else if (ec == http::error::body_limit)
            msg = "upstream answer is larger than " + std::to_string(up_->options.max_response_bytes) + " bytes";
        else
            msg = "upstream connection lost: " + ec.message();
        // operation_aborted here is our own timer closing the socket.
        spdlog::warn("openai: {} {}{}: {} ({})", what, up_->host_header, up_->target, ec.message(), msg);
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

std::string openai_http_error_message(unsigned status, std::string_view body, std::string_view retry_after,
                                      std::string_view secret)
{
    auto const code = " (HTTP " + std::to_string(status) + ")";
    auto quoted = redact(upstream_message(body), secret);
    auto const with = [&](std::string head) { return quoted.empty() ? head : head + ": " + quoted; };
    switch (status)
    {
    case 200: return with("upstream answered without streaming" + code);
    // The upstream's text for a refused key may echo part of it: never quoted.
    case 401: return "upstream rejected the API key" + code + "; the server's key is missing or invalid";
    case 403: return "upstream refused access" + code;
    case 404: return with("upstream has no such model or endpoint" + code);
    case 408: return "upstream timed out" + code;
    case 413: return "the conversation is too large for the upstream" + code;
    case 429:
    {
        std::string head = "upstream rate limit reached" + code;
        if (auto const r = trim(retry_after); !r.empty() && r.size() < 32 && std::isdigit(static_cast<unsigned char>(r[0])))
            head += ", retry after " + std::string(r) + " s";
        return with(head);
    }
    default: break;
    }
    if (status >= 400 && status < 500) return with("upstream rejected the request" + code);
    if (status >= 500 && status < 600) return with("upstream error" + code);
    return with("unexpected upstream answer" + code);
}

//------------------------------------------------------------------------------

struct openai_stream_decoder::impl
{
    struct call
    {
        std::string id;
        std::string name;
        std::string args;
        bool started = false;
    };

    std::shared_ptr<provider_sink> sink;
    int step = 0;
    std::string secret;
    sse_parser sse;
    simdjson::dom::parser parser;
    std::string carry; // bytes of a code point not yet whole
    std::string reasoning_carry;
    bool think_tags = false;
    think_tag_splitter splitter;
    std::map<std::int64_t, call> calls; // by `index`, in order
    std::optional<std::string> finish_reason;
    step_usage usage;

    // Calls the sink through a local reference, so a cancel from inside the
    // call (which drops `sink`) cannot destroy it under our feet. Returns
    // false once the sink is gone.
    template <class F>
    bool emit(F&& f)
    {
        if (!sink) return false;
        auto s = sink;
        f(*s);
        return sink != nullptr;
    }

    void fail(std::string_view message)
    {
        if (auto s = std::move(sink)) s->on_error(redact(std::string(message), secret));
    }

    void feed(std::string_view bytes)
    {
        if (!sink) return;
        sse.feed(bytes);
        while (sink)
        {
            auto ev = sse.next();
            if (!ev) break;
            on_event(*ev);
        }
        if (sink && sse.failed()) fail("upstream sent an oversized stream event");
    }

    void on_event(sse_event const& ev)
    {
        if (ev.type == "error") return fail("upstream error: " + shorten(ev.data));
        if (ev.type != "message") return; // e.g. `event: ping`
        auto const data = trim(ev.data);
        if (data == "[DONE]") return complete();
        simdjson::dom::element doc;
        if (auto err = parser.parse(data.data(), data.size()).get(doc))
            return fail(std::string("upstream sent malformed JSON in the stream: ") + simdjson::error_message(err));
        simdjson::dom::object root;
        if (doc.get(root)) return fail("upstream sent a stream chunk that is not a JSON object");

        simdjson::dom::element error;
        if (!root["error"].get(error) && !error.is_null())
        {
            std::string text = shorten(upstream_message(simdjson::to_string(error)));
            return fail(text.empty() ? "upstream error" : "upstream error: " + text);
        }
        simdjson::dom::array choices;
        if (!root["choices"].get(choices))
            for (auto choice : choices)
            {
                on_choice(choice);
                if (!sink) return;
            }
        simdjson::dom::object u;
        if (!root["usage"].get(u))
        {
            usage.input_tokens = number(u["prompt_tokens"]);
            usage.output_tokens = number(u["completion_tokens"]);
            simdjson::dom::object details;
            if (!u["completion_tokens_details"].get(details))
                usage.reasoning_tokens = number(details["reasoning_tokens"]);
        }
    }

    static std::int64_t number(simdjson::simdjson_result<simdjson::dom::element> v)
    {
        std::int64_t i = 0;
        if (!v.get(i)) return i;
        double d = 0;
        if (!v.get(d)) return static_cast<std::int64_t>(d);
        return 0;
    }

    void on_choice(simdjson::dom::element choice)
    {
        std::int64_t index = 0;
        // We ask for one completion; a server that sends more only has its first used.
        if (!choice["index"].get(index) && index != 0) return;
        simdjson::dom::object delta;
        if (!choice["delta"].get(delta))
        {
            // DeepSeek, vLLM and llama.cpp say `reasoning_content`, OpenRouter `reasoning`.
            std::string_view thought;
            if ((!delta["reasoning_content"].get(thought) || !delta["reasoning"].get(thought)) &&
                !thought.empty() && !reasoning(thought))
                return;
            std::string_view content;
            if (!delta["content"].get(content) && !content.empty() && !text(content)) return;
            simdjson::dom::array calls_delta;
            if (!delta["tool_calls"].get(calls_delta))
            {
                std::int64_t position = 0;
                for (auto c : calls_delta)
                {
                    if (!on_tool_delta(c, position++)) return;
                }
            }
        }
        std::string_view reason;
        if (!choice["finish_reason"].get(reason)) finish_reason = std::string(reason);
    }

    // Whole code points only. simdjson has validated the UTF-8 of each chunk,
    // so the carry only ever holds a tail split by a server that cuts
    // sequences across chunks with escapes; kept for safety.
    bool text(std::string_view t)
    {
        carry.append(t);
        auto const n = core::complete_utf8_prefix(carry);
        if (n == 0) return true;
        bool const alive = think_tags ? split(std::string_view(carry).substr(0, n))
                                      : emit([&](provider_sink& s) { s.on_text(std::string_view(carry).substr(0, n)); });
        carry.erase(0, n);
        return alive;
    }

    bool reasoning(std::string_view t)
    {
        reasoning_carry.append(t);
        auto const n = core::complete_utf8_prefix(reasoning_carry);
        if (n == 0) return true;
        bool const alive =
            emit([&](provider_sink& s) { s.on_reasoning(std::string_view(reasoning_carry).substr(0, n)); });
        reasoning_carry.erase(0, n);
        return alive;
    }

    // --think-tags: content split into the answer and `<think>` reasoning.
    bool split(std::string_view whole)
    {
        bool alive = true;
        splitter.feed(whole, [&](bool thinking, std::string_view piece) {
            if (alive)
                alive = emit([&](provider_sink& s) { thinking ? s.on_reasoning(piece) : s.on_text(piece); });
        });
        return alive;
    }

    bool on_tool_delta(simdjson::dom::element d, std::int64_t position)
    {
        std::int64_t index = position;
        if (d["index"].get(index)) index = position; // lenient: a missing index is the position
        auto& c = calls[index];
        std::string_view id;
        if (!d["id"].get(id) && !id.empty() && c.id.empty() && !id_in_use(id)) c.id = std::string(id);
        std::string_view name;
        std::string_view fragment;
        simdjson::dom::object fn;
        if (!d["function"].get(fn))
        {
            // Some servers repeat the whole name in every delta; others could
            // send it in pieces before the call starts.
            if (!fn["name"].get(name) && !name.empty() && !c.started && name != c.name) c.name += name;
            if (fn["arguments"].get(fragment)) fragment = {};
        }
        bool const was_started = c.started;
        c.args.append(fragment);
        if (!c.started && !c.name.empty())
        {
            if (c.id.empty()) c.id = "call_" + std::to_string(step) + "_" + std::to_string(index);
            c.started = true;
            if (!emit([&](provider_sink& s) { s.on_tool_input_start(c.id, c.name); })) return false;
            if (!c.args.empty()) return emit([&](provider_sink& s) { s.on_tool_input_delta(c.id, c.args); });
        }
        else if (was_started && !fragment.empty())
            return emit([&](provider_sink& s) { s.on_tool_input_delta(c.id, fragment); });
        return true;
    }

    bool id_in_use(std::string_view id) const
    {
        for (auto const& [i, c] : calls)
            if (c.id == id) return true;
        return false;
    }

    void complete()
    {
        if (think_tags)
        {
            bool alive = true;
            splitter.finish([&](bool thinking, std::string_view piece) {
                if (alive)
                    alive = emit([&](provider_sink& s) { thinking ? s.on_reasoning(piece) : s.on_text(piece); });
            });
            if (!alive) return;
        }
        for (auto const& [index, c] : calls)
            if (!c.started) return fail("upstream sent a tool call without a function name");
        for (auto& entry : calls)
        {
            auto const& c = entry.second; // not a structured binding: lambdas below capture it
            auto raw = trim(c.args);
            if (raw.empty()) raw = "{}";
            // Invalid arguments stay visible as a JSON string of the raw text;
            // the tool then fails with "arguments must be a JSON object".
            auto args = core::canonical_json(raw).value_or(core::json_string(c.args));
            if (!emit([&](provider_sink& s) { s.on_tool_call(c.id, c.name, args); })) return;
        }
        auto reason = map_finish_reason(finish_reason.value_or("stop"));
        // Some servers say "stop" after tool calls; the engine loops on "tool-calls".
        if (!calls.empty() && reason == "stop") reason = "tool-calls";
        if (auto s = std::move(sink)) s->on_step_finish(reason, usage);
    }

    void end_of_stream()
    {
        if (!sink) return;
        // Lenient: a server that ends the body after the finish chunk without
        // `[DONE]` still finished its answer.
        if (finish_reason) return complete();
        fail("upstream closed the stream before the answer was finished");
    }
};

openai_stream_decoder::openai_stream_decoder(std::shared_ptr<provider_sink> sink, int step, std::string secret,
                                             bool think_tags)
    : impl_(std::make_unique<impl>())
{
    impl_->sink = std::move(sink);
    impl_->step = step;
    impl_->secret = std::move(secret);
    impl_->think_tags = think_tags;
}

//------------------------------------------------------------------------------

void think_tag_splitter::feed(std::string_view text, std::function<void(bool, std::string_view)> const& out)
{
    static constexpr std::string_view open = "<think>";
    static constexpr std::string_view close = "</think>";
    held_.append(text);
    std::string_view rest(held_);
    for (;;)
    {
        auto const tag = thinking_ ? close : open;
        auto const at = rest.find(tag);
        if (at == std::string_view::npos) break;
        if (at > 0) out(thinking_, rest.substr(0, at));
        thinking_ = !thinking_;
        rest.remove_prefix(at + tag.size());
    }
    // Hold back a tail that may be the start of the next tag ("<thi", "</"),
    // cut across chunks; everything before it goes out now.
    auto const tag = thinking_ ? close : open;
    std::size_t keep = 0;
    for (std::size_t n = std::min(rest.size(), tag.size() - 1); n > 0; --n)
        if (rest.substr(rest.size() - n) == tag.substr(0, n))
        {
            keep = n;
            break;
        }
    if (rest.size() > keep) out(thinking_, rest.substr(0, rest.size() - keep));
    held_ = std::string(rest.substr(rest.size() - keep));
}

void think_tag_splitter::finish(std::function<void(bool, std::string_view)> const& out)
{
    if (!held_.empty()) out(thinking_, held_);
    held_.clear();
}

openai_stream_decoder::~openai_stream_decoder() = default;

void openai_stream_decoder::feed(std::string_view bytes)
{
    impl_->feed(bytes);
}

void openai_stream_decoder::end_of_stream()
{
    impl_->end_of_stream();
}

void openai_stream_decoder::fail(std::string_view message)
{
    impl_->fail(message);
}

void openai_stream_decoder::detach() noexcept
{
    impl_->sink.reset();
}

bool openai_stream_decoder::done() const noexcept
{
    return !impl_->sink;
}

} // namespace chatstream::streaming
