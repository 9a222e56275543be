#pragma once
/// @file provider.hpp
/// Model providers. A provider runs one *step* of a generation (one upstream
/// request) and reports what it produces through a provider_sink; the
/// generation engine runs the tool loop around the steps (docs/design.md §7).
#include <boost/asio/any_io_executor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::streaming
{

struct chat_message
{
    std::string role; ///< user | assistant | system
    std::string content;
    /// An earlier answer's reasoning: sent back upstream only with
    /// --send-reasoning (docs/providers.md says why not by default).
    std::string reasoning;
};

/// A tool call of an earlier step of this generation, with its result.
struct tool_exchange
{
    std::string id;
    std::string name;
    std::string args_json;
    std::string result_json;
};

struct provider_request
{
    std::vector<chat_message> messages;      ///< conversation so far, the new user message last
    std::vector<tool_exchange> tool_results; ///< calls already made by earlier steps
    std::optional<std::string> model;
    int step = 0; ///< 0-based step of the tool loop
    /// A title suggestion for a new conversation (auto-title), not an
    /// answer: no tools; the reply is the title text.
    bool title = false;
    std::int64_t output_tokens_so_far = 0; ///< text tokens of earlier steps
};

/// A citation the model made (docs/design.md §9): the generation
/// normalizes the URL, numbers and deduplicates it per message.
struct cited_source
{
    std::string url;
    std::optional<std::string> title;
    std::optional<std::string> snippet;
    std::optional<std::string> published_date;
};

struct step_usage
{
    std::int64_t input_tokens = 0;
    std::int64_t output_tokens = 0;    ///< reasoning included, as upstreams count it
    std::int64_t reasoning_tokens = 0; ///< of output_tokens
};

/// What a running step reports. Every call happens on the executor given to
/// provider::start (the generation's strand). Text chunks are whole UTF-8 code
/// points. A step ends with exactly one of on_step_finish / on_error, unless
/// it was cancelled, in which case the sink hears nothing more.
class provider_sink
{
public:
    virtual ~provider_sink() = default;
    virtual void on_text(std::string_view text) = 0;
    /// The model's reasoning (docs/design.md §9), apart from its answer. A sink
    /// that has no use for it (a title request) ignores it.
    virtual void on_reasoning(std::string_view) {}
    /// A source the model cites at this point of its text (an upstream
    /// annotation or citation, the scripted `/source`). A sink that has no
    /// use for it ignores it.
    virtual void on_source(cited_source const&) {}
    virtual void on_tool_input_start(std::string_view id, std::string_view name) = 0;
    virtual void on_tool_input_delta(std::string_view id, std::string_view delta) = 0;
    /// A complete tool call; @p args_json is valid JSON text.
    virtual void on_tool_call(std::string_view id, std::string_view name,
                              std::string_view args_json) = 0;
    /// @p finish_reason: "stop", "tool-calls", "length", ...
    virtual void on_step_finish(std::string_view finish_reason, step_usage usage) = 0;
    virtual void on_error(std::string_view message) = 0;
};

/// A running step.
class provider_stream
{
public:
    virtual ~provider_stream() = default;
    /// Aborts the step: no further sink calls. Call on the step's executor.
    virtual void cancel() = 0;
};

class provider
{
public:
    virtual ~provider() = default;
    /// Starts a step. The stream holds @p sink until the step ends or is
    /// cancelled. Thread-safe.
    virtual std::shared_ptr<provider_stream> start(boost::asio::any_io_executor ex,
                                                   provider_request request,
                                                   std::shared_ptr<provider_sink> sink) = 0;
};

//------------------------------------------------------------------------------

/// Directives of the scripted provider found in a user message.
struct scripted_directives
{
    std::optional<std::size_t> tokens;     ///< /tokens N
    std::optional<std::size_t> fail_after; ///< /fail N
    std::optional<std::size_t> think;      ///< /think N: reasoning tokens before each step's answer
    std::optional<int> delay_ms;           ///< /delay MS
    std::optional<std::string> tool_name;  ///< /tool NAME {json}
    std::string tool_args = "{}";          ///< canonical JSON text
    /// `/source URL [TITLE]`, in order; cited along the answer.
    std::vector<cited_source> sources;
};

/// Parses directives out of @p content. A malformed directive (e.g.
/// `/tokens x`, `/tool calc {bad`) is ignored as plain text.
scripted_directives parse_directives(std::string_view content);

/// The scripted provider's title for a conversation starting with
/// @p content: its first six words, directives and their arguments left out.
std::string scripted_title(std::string_view content);

/// Token @p i of the scripted vocabulary: ASCII, accents, CJK and emoji
/// outside the BMP (surrogate pairs in UTF-16), each a whole code point run.
std::string_view scripted_token(std::size_t i) noexcept;

struct scripted_options
{
    std::chrono::milliseconds token_delay{0}; ///< default per-token delay (--token-delay-ms)
};

/// The deterministic provider of docs/design.md §7, for tests and benchmarks.
std::unique_ptr<provider> make_scripted_provider(scripted_options const& options);

} // namespace chatstream::streaming
