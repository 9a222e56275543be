#pragma once
/// @file openai_provider.hpp
/// The `openai` provider (docs/design.md §7): one step = one streaming
/// `POST {base}/v1/chat/completions` to any OpenAI-compatible server, over
/// Beast's HTTP client, with TLS through OpenSSL. See docs/providers.md.
#include "chatstream/streaming/provider.hpp"
#include "chatstream/streaming/tools.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::streaming
{

/// Configuration of the `openai` provider.
struct openai_options
{
    /// `http://` or `https://` host, optional port and path prefix, e.g.
    /// `https://api.openai.com` or `http://127.0.0.1:8000`. The endpoint is
    /// `{base}/v1/chat/completions`; a base that already ends in `/v1`
    /// (the OpenAI SDK convention) gets `/chat/completions` only.
    std::string base_url;

    /// Sent as `Authorization: Bearer ...` when set. Never logged, and
    /// removed from any upstream message passed on to users.
    std::optional<std::string> api_key;

    /// Model used when the request names none. Empty: no `model` field is
    /// sent (single-model servers such as llama.cpp accept that).
    std::string model;

    /// Sent as the first message when the conversation has no system message.
    std::optional<std::string> system_prompt;

    /// Tools offered to the model (`tools`, function calling); usually
    /// `tool_registry::definitions()`. Empty: no `tools` field.
    std::vector<tool_definition> tools;

    /// `max_tokens` of each request, when set.
    std::optional<int> max_output_tokens;

    /// Resolve + TCP connect + TLS handshake.
    std::chrono::milliseconds connect_timeout{10'000};

    /// The longest the upstream may stay silent: from the request to the
    /// response headers, and between two reads of the stream. Streams carry
    /// keep-alive comments, so this bounds a stall, not a long answer; it is
    /// generous because reasoning models can think a long time before the
    /// first token.
    std::chrono::milliseconds request_timeout{120'000};

    /// Verify the server certificate (chain + host name). Off only for a
    /// trusted lab setup; it is on by default.
    bool tls_verify = true;

    /// Extra trust anchors (PEM file), added to the system's default paths.
    std::string ca_file;

    /// Bound on one response body (a runaway stream is cut with an error).
    std::size_t max_response_bytes = 64 * 1024 * 1024;
    /// --think-tags: the model inlines its reasoning in `content` as
    /// `<think>...</think>` (Qwen3, DeepSeek R1 served raw); split it out.
    bool think_tags = false;
    /// --send-reasoning: earlier answers' reasoning goes back upstream as
    /// `reasoning_content`. Off by default: DeepSeek rejects it, and most
    /// chat templates drop earlier thinking anyway (docs/providers.md).
    bool send_reasoning = false;
};

/// Splits content into answer text and `<think>...</think>` reasoning, with
/// a tag cut anywhere across chunks (the tags are ASCII, so pieces stay whole
/// UTF-8 when the input is). Exposed for tests.
class think_tag_splitter
{
public:
    /// Feeds whole code points; @p out gets (thinking, piece) in order.
    void feed(std::string_view text, std::function<void(bool, std::string_view)> const& out);
    /// The stream ended: what was held back (a tag prefix that never completed) goes out.
    void finish(std::function<void(bool, std::string_view)> const& out);
    bool thinking() const noexcept { return thinking_; }

private:
    std::string held_;
    bool thinking_ = false;
};

/// Makes the provider. Steps run fully asynchronously on the executor given
/// to `provider::start`; cancel closes the socket at once. The provider is
/// thread-safe and must outlive its running steps' `start` calls only (a
/// step keeps what it needs alive by itself).
/// @throws std::invalid_argument for a malformed base URL, a tool whose
///         schema is not a JSON object, or an unreadable `ca_file`.
std::unique_ptr<provider> make_openai_provider(openai_options const& options);

/// The JSON body of the request for @p request (exposed for tests):
/// `model`, `stream:true`, `stream_options.include_usage`, `messages` (the
/// optional system prompt, the conversation, then each earlier tool call as
/// an assistant `tool_calls` message followed by its `tool` result), `tools`.
/// @throws std::invalid_argument as make_openai_provider.
std::string openai_request_body(openai_options const& options, provider_request const& request);

/// User-facing text for a non-200 upstream answer (exposed for tests): 401
/// invalid key, 403, 404, 429 rate limited (with Retry-After), 5xx upstream
/// error, with the upstream's own `error.message` when it has one (cut to
/// 300 bytes; 401/403 never quote the upstream). @p secret is redacted.
std::string openai_http_error_message(unsigned status, std::string_view body,
                                      std::string_view retry_after = {},
                                      std::string_view secret = {});

//------------------------------------------------------------------------------

/// Decodes a chat-completions SSE body into provider_sink calls, with no
/// I/O, so it can be tested (and fuzzed) byte by byte.
///
/// Feed it the response body in pieces of any size. Text goes to `on_text`
/// in whole code points as it arrives. Tool calls are assembled per `index`
/// from `id`, `function.name` and `function.arguments` fragments:
/// `on_tool_input_start` once the name is known, `on_tool_input_delta` per
/// argument fragment, and `on_tool_call` for every call when the step ends
/// (arguments as canonical JSON; arguments that are not valid JSON are
/// passed as a JSON string holding the raw text, so the call still shows and
/// the tool fails with a message the model can act on). The step ends at
/// `[DONE]` (or at the end of the body after a `finish_reason`) with
/// `on_step_finish`, or with `on_error` for an `error` chunk, malformed
/// JSON, an oversized event or a body that ends early. Exactly one of the
/// two is called, then the decoder lets go of the sink.
///
/// Not thread-safe: one decoder per step, used on the step's executor.
class openai_stream_decoder
{
public:
    /// @param step    the tool-loop step, used for ids of calls that have none
    /// @param secret  text removed from upstream error messages (the API key)
    /// @param think_tags  split `<think>` reasoning out of the content (--think-tags)
    openai_stream_decoder(std::shared_ptr<provider_sink> sink, int step = 0,
                          std::string secret = {}, bool think_tags = false);
    ~openai_stream_decoder();
    openai_stream_decoder(openai_stream_decoder const&) = delete;
    openai_stream_decoder& operator=(openai_stream_decoder const&) = delete;

    /// Feeds body bytes; may call the sink any number of times.
    void feed(std::string_view bytes);

    /// The body ended: finishes the step (finish_reason seen), or fails it.
    void end_of_stream();

    /// Ends the step with `on_error(message)` unless it already ended.
    void fail(std::string_view message);

    /// Cancel: no sink call from now on; the sink is released.
    void detach() noexcept;

    /// True once the sink was let go of (finished, failed or detached).
    bool done() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace chatstream::streaming
