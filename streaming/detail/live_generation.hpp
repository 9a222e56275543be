#pragma once
// The live side of the generation engine, shared by its translation units:
// the hub's state (streaming/stream_hub.cpp), one running generation
// (generation.cpp, auto_title.cpp), the accept path (accept.cpp) and the
// stored replay (replay.cpp). Private to streaming/.
#include "chatstream/streaming/generation.hpp"

#include "chatstream/storage/nodes.hpp"
#include "chatstream/streaming/cluster.hpp"

#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/pricing.hpp"
#include "detail/row_json.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/file_name.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/files.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/sources.hpp"
#include "chatstream/storage/usage.hpp"
#include "chatstream/storage/writer.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <iterator>
#include <mutex>
#include <unordered_map>

namespace chatstream::streaming
{

namespace net = boost::asio;
using strand_type = net::strand<net::io_context::executor_type>;
using clock = std::chrono::steady_clock;

constexpr std::size_t replay_chunk_bytes = 16 * 1024;

/// `tool-output-available`, or `tool-output-error` when @p result_json is
/// `{"success":false,"error":...}` (streaming/replay.cpp).
frame tool_output(std::string_view message_id, std::string_view id, std::string_view result_json);

//------------------------------------------------------------------------------

class generation;

/// What one generation hands the batched flush: its bytes since the last one.
struct flush_item
{
    std::shared_ptr<generation> gen;
    std::string message_id;
    std::int64_t byte_start = 0;
    std::string text;
    std::optional<std::int64_t> first_token_at; ///< set on a generation's first flush
    std::int64_t reasoning_byte_start = 0;
    std::string reasoning;                           ///< the reasoning added since the last flush
    std::optional<std::int64_t> thinking_started_at; ///< set on the first reasoning flush
};

struct stream_hub::state : std::enable_shared_from_this<stream_hub::state>
{
    explicit state(hub_context const& c) : ctx(c) {}

    // Live persistence, batched (issue 19): every flush interval, one writer
    // job appends the new text of every generation that has some, instead of
    // one job (and one completion hand-off) per generation.
    std::mutex flush_mutex;
    std::vector<std::weak_ptr<generation>> dirty;
    bool flush_armed = false;
    bool flush_in_flight = false;
    std::optional<net::steady_timer> flush_timer;

    /// Queues @p g for the next flush tick. Thread-safe.
    void mark_dirty(std::shared_ptr<generation> const& g);
    void arm_flush_locked();
    void flush_tick();

    hub_context ctx;
    mutable std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<generation>> by_message;
    std::unordered_map<std::string, std::string> by_conversation; ///< "" while being created
    bool stopping = false;
    std::function<void()> on_drained;

    // Called with the lock held; hands back the callback to run outside it.
    std::function<void()> take_drained_if_idle()
    {
        if (stopping && by_conversation.empty() && on_drained)
            return std::exchange(on_drained, {});
        return {};
    }

    std::shared_ptr<generation> find(std::string const& message_id) const
    {
        std::lock_guard lock(mutex);
        auto it = by_message.find(message_id);
        return it == by_message.end() ? nullptr : it->second;
    }

    /// Frees the conversation (and forgets the message). Returns the drain
    /// callback when this was the last generation of a shutdown: the caller
    /// runs it after sending its final events, so they are flushed before
    /// sessions close.
    [[nodiscard]] std::function<void()> release(std::string const& conversation_id,
                                                std::string const& message_id)
    {
        std::lock_guard lock(mutex);
        by_conversation.erase(conversation_id);
        if (!message_id.empty())
            by_message.erase(message_id);
        return take_drained_if_idle();
    }
};

//------------------------------------------------------------------------------

// In the transaction that ends a generation: it no longer runs anywhere, and
// nodes following it re-read it (a no-op pair on a single SQLite node).
void end_claim(storage::database& db, std::string const& message_id);

/// Replays a message from the database (it is not running here, or its
/// log's text was released). streaming/replay.cpp.
void subscribe_stored(hub_context& ctx, std::string const& user_id, subscribe_request req,
                      std::weak_ptr<subscriber> s);

// Reads message @p message_id of @p user_id on the read pool and hands it to
// @p then(db, subscriber, row); answers not_found (missing or not theirs)
// and internal (read failed) itself.
template <class Then>
void with_stored_message(storage::read_pool& reads, std::string user_id, std::string message_id,
                         request_id id, std::weak_ptr<subscriber> s, Then then)
{
    reads.post(
        [user_id = std::move(user_id), message_id = std::move(message_id), id = std::move(id),
         s = std::move(s), then = std::move(then)](storage::database& db)
        {
            auto sub = s.lock();
            if (!sub)
                return;
            try
            {
                auto m = storage::messages::get(db, user_id, message_id);
                if (!m)
                    return sub->deliver(
                        events::error(id, message_id, wire_error::not_found, "no such message"));
                then(db, *sub, *m);
            }
            catch (std::exception const& e)
            {
                spdlog::error("message {}: {}", message_id, e.what());
                sub->deliver(events::error(id, message_id, wire_error::internal,
                                           "could not read the message"));
            }
        });
}

/// One running generation. Lives on its strand; owned by the hub's map, by
/// its provider stream and by pending completions.
class generation : public provider_sink, public std::enable_shared_from_this<generation>
{
public:
    struct identity
    {
        std::string user_id;
        std::string conversation_id;
        std::string message_id;
        std::optional<std::string> model;
        std::string day;          ///< UTC day the generation is accounted to
        bool wants_title = false; ///< the conversation is still "New Chat"
        std::string title_source; ///< first user message, for the auto-title
    };

    /// Runs on @p home (the requester's strand) when given, else on a strand
    /// of its own.
    generation(std::shared_ptr<stream_hub::state> hub, identity id,
               std::vector<chat_message> history, std::optional<strand_type> home)
        : hub_(std::move(hub)), ctx_(hub_->ctx),
          strand_(home ? std::move(*home) : net::make_strand(ctx_.ioc)), id_(std::move(id)),
          history_(std::move(history)),
          log_(std::make_shared<stream_log>(id_.message_id, id_.conversation_id)),
          retry_timer_(strand_)
    {
    }

    /// Acks, then streams to @p requester. Thread-safe.
    void start(std::weak_ptr<subscriber> requester, frame ack);

    /// Thread-safe.
    void subscribe(std::string const& user_id, std::weak_ptr<subscriber> s, subscribe_request req);

    /// Thread-safe.
    void cancel(std::string const& user_id, std::weak_ptr<subscriber> s, request_id id);

    /// A cancel forwarded by another node (which checked the user). Thread-safe.
    void stop_requested();

    /// Shutdown: stop into a committed terminal state. Thread-safe.
    void stop();

    std::string const& user_id() const { return id_.user_id; }

    // provider_sink: called on strand_ -----------------------------------------

    void on_text(std::string_view text) override;

    void on_reasoning(std::string_view text) override;

    void on_source(cited_source const& source) override;

    void on_tool_input_start(std::string_view id, std::string_view name) override;

    void on_tool_input_delta(std::string_view id, std::string_view delta) override;

    void on_tool_call(std::string_view id, std::string_view name,
                      std::string_view args_json) override;

    void on_step_finish(std::string_view finish_reason, step_usage usage) override;

    void on_error(std::string_view message) override;

private:
    enum class state
    {
        running,
        finishing, ///< terminal state submitted, not yet committed
        finished
    };

    // A tool call of this generation; result_json is set once committed.
    using tool_state = replay_tool;

    void mark_dirty();

    // A reasoning block ends when the answer, a tool call or the step's end
    // comes; the first block's end is thinking_completed_at (docs/design.md §9).
    void end_reasoning();

    // tokens_per_second counts the time tokens stream: from each step's
    // first token to its end, so neither the wait for the first token nor
    // the time spent in tools between steps lowers it.
    void token_arrived();
    void step_ended();

    tool_state* find_tool(std::string_view id);

    void start_step();

    // The result goes into the call's row; tool-output-* waits for the commit.
    void store_tool_result(storage::tool_call_row row, std::string json);

    void on_tool_committed(std::string const& tool_id, std::string json, std::error_code ec);

    void maybe_next_step();

    // Sources (docs/design.md §9): numbered from 1 per message in order of
    // first appearance, deduplicated by normalized URL; the row is committed
    // before the `source` event goes out.
    void record_source(cited_source const& source, char const* provider);
    void on_source_committed(storage::source_row const& row, std::string const& normalized,
                             bool needs_enrichment, std::error_code ec);
    // A tool result shaped {results:[{url,title,snippet}]} cites its results.
    void cite_tool_results(std::string_view result_json);

public:
    // The batched flush (stream_hub::state::flush_tick) --------------------
    // Called by the flusher only, one batch at a time.

    void clear_dirty() { dirty_.store(false, std::memory_order_release); }

    /// The bytes added since the last committed flush; nullopt when none or
    /// when the end is being committed (it carries the whole text).
    std::optional<flush_item> take_flush();

    void flush_done(flush_item const& item, bool committed);

private:
    void finish(std::string status, std::string reason, std::optional<std::string> error);

    // A lock held by another process past the busy timeout is transient:
    // the finished answer is committed as it is if the lock goes within this
    // many more busy timeouts; only then does the client get an error.
    static constexpr int max_busy_retries = 2;

    // Commits completion_ (tool calls finalized + terminal status) before
    // the finish event goes out.
    void commit_final(events::finish_info info, int busy_retries);

    // The end could not be stored (disk full, database locked) and the client
    // was told so. Keep storing it, as `error` with the text so far, so the
    // row does not stay `generating` (and its tool calls partial) until the
    // next restart. Found by the disk-full fault test (issue #9).
    void retry_final_commit(std::string why, int attempt);

    void on_finished(events::finish_info info, std::error_code ec);

    void publish(frame const& f);

    void publish_update(boost::json::object fields);

    // Auto-title: one short provider request after the first complete answer
    // of a "New Chat". Best effort: a failure or timeout leaves the title.
    void suggest_title();

    void do_subscribe(std::string const& user_id, std::weak_ptr<subscriber> const& s,
                      subscribe_request const& req);

    // A new reader of the log: it starts with `start`, then everything past
    // @p from, then live events, then the final one.
    void follow(std::weak_ptr<subscriber> const& w, stream_log::cursor from);

    // A canceller that is not following still hears the finish.
    void add_watcher(std::weak_ptr<subscriber> const& s);

    void broadcast(frame f) { log_->append_event(std::move(f)); }

    std::shared_ptr<stream_hub::state> hub_;
    hub_context& ctx_;
    strand_type strand_;
    identity id_;
    std::vector<chat_message> history_;
    std::shared_ptr<stream_log> log_; ///< the text and events so far, read by every follower
    std::optional<double> cost_;      ///< USD, when the model is in the price table
    net::steady_timer retry_timer_;

    state state_ = state::running;
    std::vector<std::weak_ptr<subscriber>> followers_; ///< identities only (for add_watcher)
    std::vector<std::shared_ptr<void>> pumps_;         ///< default followers, until the end
    std::vector<std::weak_ptr<subscriber>> watchers_;
    std::shared_ptr<provider_stream> stream_;
    std::vector<tool_state> tools_;
    std::vector<std::string> source_hashes_; ///< url_hash by position - 1
    int step_ = 0;
    bool step_done_ = false;
    std::string step_reason_ = "stop";
    int pending_tools_ = 0;
    std::int64_t step_chunks_ = 0;
    std::int64_t step_reasoning_chunks_ = 0;
    std::int64_t input_tokens_ = 0;
    std::int64_t output_tokens_ = 0;
    std::int64_t reasoning_tokens_ = 0;
    std::optional<std::int64_t> first_token_at_;
    std::optional<std::int64_t> thinking_started_at_;
    std::optional<std::int64_t> thinking_completed_at_;
    bool reasoning_open_ = false; ///< between reasoning-start and reasoning-end
    std::optional<clock::time_point> step_first_token_;
    double streaming_seconds_ = 0; ///< time tokens streamed, for tokens_per_second
    // Shared with the flusher (another thread).
    std::atomic<bool> dirty_{false};
    std::atomic<bool> finishing_{false};
    std::atomic<std::int64_t> first_token_ms_{0};
    std::atomic<std::int64_t> thinking_started_ms_{0};
    // The flusher's own (one batch at a time).
    std::size_t flushed_bytes_ = 0;
    std::size_t flushed_reasoning_bytes_ = 0;
    bool first_flushed_ = false;
    bool thinking_flushed_ = false;
    std::optional<storage::messages::completion> completion_;
    std::optional<frame> final_;
    std::string final_status_;
    std::shared_ptr<provider_stream> title_stream_;
    std::optional<net::steady_timer> title_timer_;
};

} // namespace chatstream::streaming
