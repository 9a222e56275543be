// The generation engine: one strand per generation, subscribers held weakly,
// every SQLite write through the writer, completions posted back.
#include "chatstream/streaming/generation.hpp"

#include "chatstream/storage/nodes.hpp"
#include "chatstream/streaming/cluster.hpp"

#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/pricing.hpp"
#include "detail/row_json.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/file_name.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/files.hpp"
#include "chatstream/storage/repositories.hpp"
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
namespace
{

namespace net = boost::asio;
using strand_type = net::strand<net::io_context::executor_type>;
using clock = std::chrono::steady_clock;

constexpr std::size_t replay_chunk_bytes = 16 * 1024;

// `{"success":false,"error":"..."}` -> the error text; anything else -> nullopt.
std::optional<std::string> tool_failure(std::string_view result_json)
{
    boost::system::error_code ec;
    auto v = boost::json::parse(result_json, ec);
    if (ec || !v.is_object())
        return std::nullopt;
    auto const& o = v.as_object();
    auto const* ok = o.if_contains("success");
    if (!ok || !ok->is_bool() || ok->as_bool())
        return std::nullopt;
    auto const* err = o.if_contains("error");
    if (err && err->is_string())
        return std::string(err->as_string());
    return std::string("tool failed");
}

frame tool_output(std::string_view message_id, std::string_view id, std::string_view result_json)
{
    if (auto failure = tool_failure(result_json))
        return events::tool_output_error(message_id, id, *failure);
    return events::tool_output_available(message_id, id, result_json);
}

} // namespace

namespace
{

// Emits @p text[byte, end) as deltas of at most replay_chunk_bytes, cut on
// code point boundaries, advancing @p byte and @p u16.
template <class MakeDelta>
void emit_deltas(MakeDelta const& make, std::string_view text, std::size_t& byte, std::uint64_t& u16,
                 std::size_t end, std::function<void(frame)> const& emit)
{
    while (byte < end)
    {
        auto n = std::min(end - byte, replay_chunk_bytes);
        if (byte + n < end)
            n = core::complete_utf8_prefix(text.substr(byte, n));
        if (n == 0)
            n = end - byte; // never loop on malformed text
        auto const piece = text.substr(byte, n);
        emit(make(u16, piece));
        u16 += core::utf16_length(piece);
        byte += n;
    }
}

} // namespace

void replay_frames(std::string_view message_id, std::string_view text,
                   std::vector<replay_tool> const& tools, std::uint64_t from,
                   std::function<void(frame)> const& emit)
{
    // Work in bytes, report in UTF-16 units. An offset inside a surrogate
    // pair rounds down, so the pair is replayed whole.
    std::size_t byte = core::utf8_offset_of_utf16(text, from);
    std::uint64_t u16 = core::utf16_length(text.substr(0, byte));
    auto const make = [&](std::uint64_t at, std::string_view piece)
    { return events::text_delta(message_id, at, piece); };
    for (auto const& t : tools)
    {
        if (t.text_position < from)
            continue;
        emit_deltas(make, text, byte, u16,
                    std::max(byte, core::utf8_offset_of_utf16(text, t.text_position)), emit);
        emit(events::tool_input_available(message_id, t.id, t.name, t.args_json, t.text_position));
        if (t.result_json)
            emit(tool_output(message_id, t.id, *t.result_json));
    }
    emit_deltas(make, text, byte, u16, text.size(), emit);
}

void replay_reasoning(std::string_view message_id, std::string_view reasoning, std::uint64_t from,
                      bool open, bool close, std::function<void(frame)> const& emit)
{
    std::size_t byte = core::utf8_offset_of_utf16(reasoning, from);
    std::uint64_t u16 = core::utf16_length(reasoning.substr(0, byte));
    if (open)
        emit(events::reasoning_start(message_id));
    emit_deltas([&](std::uint64_t at, std::string_view piece)
                { return events::reasoning_delta(message_id, at, piece); },
                reasoning, byte, u16, reasoning.size(), emit);
    if (close)
        emit(events::reasoning_end(message_id));
}

stored_replay read_stored_replay(storage::database& db, storage::message_row const& m)
{
    stored_replay r;
    r.terminal = storage::is_terminal_status(m.status);
    r.text = r.terminal ? m.content : m.partial_content.value_or(m.content);
    r.reasoning = r.terminal ? m.reasoning.value_or("")
                             : m.partial_reasoning.value_or(m.reasoning.value_or(""));
    for (auto& t : storage::tool_calls::list_for_message(db, m.user_id, m.id, true))
        if (t.result)
            r.tools.push_back({std::move(t.id), std::move(t.name), std::move(t.arguments),
                               std::move(t.result),
                               static_cast<std::uint64_t>(t.text_position.value_or(0))});
    return r;
}

frame stored_finish(storage::message_row const& m)
{
    return events::finish(m.id, {m.status, m.finish_reason.value_or(m.status),
                                 m.input_tokens.value_or(0), m.output_tokens.value_or(0), m.error,
                                 m.reasoning_tokens.value_or(0)});
}

void deliver_to(std::weak_ptr<subscriber> const& w, frame f)
{
    if (auto s = w.lock())
        s->deliver(std::move(f));
}

namespace
{

/// The default way to follow a log: every item goes to deliver() as soon as
/// it is appended. Woken on the appender's thread, so items keep their order.
class log_pump : public log_listener, public std::enable_shared_from_this<log_pump>
{
public:
    log_pump(std::weak_ptr<subscriber> sub, std::shared_ptr<stream_log> log,
             stream_log::cursor from)
        : sub_(std::move(sub)), log_(std::move(log)), cursor_(from)
    {
    }

    void on_log_ready() override { pump(); }

    void pump()
    {
        std::lock_guard lock(mutex_);
        for (;;)
        {
            auto sub = sub_.lock();
            if (!sub)
                return;
            std::uint64_t offset = 0;
            frame event;
            switch (log_->next(cursor_, text_, offset, event, replay_chunk_bytes, weak_from_this()))
            {
            case stream_log::item::none:
                return;
            case stream_log::item::text:
                sub->deliver(events::text_delta(log_->message_id(), offset, text_));
                break;
            case stream_log::item::reasoning:
                sub->deliver(events::reasoning_delta(log_->message_id(), offset, text_));
                break;
            case stream_log::item::stored:
                // Cannot happen: a pump drains the log synchronously when it
                // closes, before the generation releases its text.
                sub->deliver(events::error({}, log_->message_id(), wire_error::internal,
                                           "the stream fell behind a released log"));
                return;
            case stream_log::item::event:
                sub->deliver(std::move(event));
                break;
            }
        }
    }

private:
    std::mutex mutex_;
    std::weak_ptr<subscriber> sub_;
    std::shared_ptr<stream_log> log_;
    stream_log::cursor cursor_;
    std::string text_;
};

} // namespace

std::shared_ptr<void> subscriber::follow(std::shared_ptr<stream_log> log, stream_log::cursor from,
                                         std::weak_ptr<subscriber> self)
{
    auto pump = std::make_shared<log_pump>(std::move(self), std::move(log), from);
    pump->pump();
    return pump;
}

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
    std::string reasoning; ///< the reasoning added since the last flush
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
void end_claim(storage::database& db, std::string const& message_id)
{
    storage::nodes::release(db, message_id);
    storage::nodes::notify(db, storage::nodes::progress_channel, message_id);
}

/// Replays a message from the database (it is not running here, or its
/// log's text was released). Defined with stream_hub::subscribe.
void subscribe_stored(hub_context& ctx, std::string const& user_id, subscribe_request req,
                      std::weak_ptr<subscriber> s);

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
        std::string day;           ///< UTC day the generation is accounted to
        bool wants_title = false;  ///< the conversation is still "New Chat"
        std::string title_source;  ///< first user message, for the auto-title
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
    void start(std::weak_ptr<subscriber> requester, frame ack)
    {
        net::dispatch(
            strand_,
            [self = shared_from_this(), requester = std::move(requester),
             ack = std::move(ack)]() mutable
            {
                deliver_to(requester, std::move(ack));
                self->follow(requester, stream_log::cursor{});
                auto const now = core::now_ms();
                self->ctx_.writer.submit(
                    [id = self->id_.message_id, now](storage::database& db)
                    { storage::messages::mark_generating(db, id, now); },
                    [self, now](std::error_code ec)
                    {
                        if (!ec)
                            self->publish_update(boost::json::object{
                                {"status", storage::status::generating},
                                {"generationStartedAt", now}});
                    });
                self->start_step();
            });
    }

    /// Thread-safe.
    void subscribe(std::string const& user_id, std::weak_ptr<subscriber> s, subscribe_request req)
    {
        net::dispatch(strand_, [self = shared_from_this(), user_id, s = std::move(s),
                                req = std::move(req)] { self->do_subscribe(user_id, s, req); });
    }

    /// Thread-safe.
    void cancel(std::string const& user_id, std::weak_ptr<subscriber> s, request_id id)
    {
        net::dispatch(
            strand_,
            [self = shared_from_this(), user_id, s = std::move(s), id = std::move(id)]
            {
                if (user_id != self->id_.user_id)
                    return deliver_to(s, events::error(id, self->id_.message_id,
                                                       wire_error::not_found, "no such message"));
                switch (self->state_)
                {
                case state::running:
                    self->add_watcher(s);
                    return self->finish(storage::status::stopped, "abort", std::nullopt);
                case state::finishing:
                    return self->add_watcher(s); // hears the finish being committed
                case state::finished:
                    return deliver_to(s,
                                      events::error(id, self->id_.message_id, wire_error::conflict,
                                                    "message is not generating (status " +
                                                        self->final_status_ + ")"));
                }
            });
    }

    /// A cancel forwarded by another node (which checked the user). Thread-safe.
    void stop_requested()
    {
        net::dispatch(strand_,
                      [self = shared_from_this()]
                      {
                          if (self->state_ == state::running)
                              self->finish(storage::status::stopped, "abort", std::nullopt);
                      });
    }

    /// Shutdown: stop into a committed terminal state. Thread-safe.
    void stop()
    {
        net::dispatch(strand_,
                      [self = shared_from_this()]
                      {
                          if (self->state_ == state::running)
                              self->finish(storage::status::stopped, "shutdown",
                                           std::string("server shutting down"));
                      });
    }

    std::string const& user_id() const { return id_.user_id; }

    // provider_sink: called on strand_ -----------------------------------------

    void on_text(std::string_view text) override
    {
        if (state_ != state::running || text.empty())
            return;
        end_reasoning();
        token_arrived();
        if (!first_token_at_)
        {
            first_token_at_ = core::now_ms();
            first_token_ms_.store(*first_token_at_, std::memory_order_relaxed);
        }
        log_->append_text(text);
        ++step_chunks_;
        mark_dirty();
    }

    void on_reasoning(std::string_view text) override
    {
        if (state_ != state::running || text.empty())
            return;
        token_arrived();
        if (!reasoning_open_)
        {
            reasoning_open_ = true;
            if (!thinking_started_at_)
            {
                thinking_started_at_ = core::now_ms();
                thinking_started_ms_.store(*thinking_started_at_, std::memory_order_relaxed);
            }
            log_->append_reasoning_event(events::reasoning_start(id_.message_id));
        }
        log_->append_reasoning(text);
        ++step_reasoning_chunks_;
        mark_dirty();
    }

    void on_tool_input_start(std::string_view id, std::string_view name) override
    {
        if (state_ != state::running)
            return;
        end_reasoning();
        auto const at = log_->u16_length_unlocked();
        tools_.push_back({std::string(id), std::string(name), "{}", std::nullopt, at});
        broadcast(events::tool_input_start(id_.message_id, id, name, at));
    }

    void on_tool_input_delta(std::string_view id, std::string_view delta) override
    {
        if (state_ != state::running)
            return;
        broadcast(events::tool_input_delta(id_.message_id, id, delta));
    }

    void on_tool_call(std::string_view id, std::string_view name,
                      std::string_view args_json) override
    {
        if (state_ != state::running)
            return;
        end_reasoning();
        auto* t = find_tool(id);
        if (!t)
        {
            tools_.push_back({std::string(id), std::string(name), "{}", std::nullopt,
                              log_->u16_length_unlocked()});
            t = &tools_.back();
        }
        t->args_json = std::string(args_json);
        broadcast(events::tool_input_available(id_.message_id, t->id, t->name, t->args_json,
                                               t->text_position));

        // The row (is_partial=1, args, text_position) is committed first; the
        // result goes into the same row; tool-output-* is sent only once that
        // second write is durable. The writer is FIFO, so one completion covers both.
        storage::tool_call_row row;
        row.message_id = id_.message_id;
        row.conversation_id = id_.conversation_id;
        row.user_id = id_.user_id;
        row.tool_call_id = t->id;
        row.tool_name = t->name;
        row.args = t->args_json;
        row.text_position = static_cast<std::int64_t>(t->text_position);
        row.is_partial = true;
        row.timestamp = core::now_ms();
        ctx_.writer.submit([row](storage::database& db) { storage::tool_calls::upsert(db, row); });

        // Tools may do I/O (e.g. `lookup` on the read pool): run_async posts
        // the result back to this strand, never blocking it.
        ++pending_tools_;
        ctx_.tools.run_async(
            t->name, t->args_json, tool_context{id_.user_id, id_.conversation_id, id_.message_id},
            strand_,
            [self = shared_from_this(), row = std::move(row)](tool_result result) mutable
            { self->store_tool_result(std::move(row), std::move(result.json)); });
    }

    void on_step_finish(std::string_view finish_reason, step_usage usage) override
    {
        stream_.reset();
        if (state_ != state::running)
            return;
        end_reasoning();
        step_ended();
        // Without usage from upstream, each text or reasoning chunk counts as a token.
        output_tokens_ +=
            usage.output_tokens ? usage.output_tokens : step_chunks_ + step_reasoning_chunks_;
        reasoning_tokens_ += usage.output_tokens ? usage.reasoning_tokens : step_reasoning_chunks_;
        step_chunks_ = 0;
        step_reasoning_chunks_ = 0;
        if (step_ == 0)
            input_tokens_ = usage.input_tokens;
        // Every step is billed for its own input (the history is re-sent),
        // so cost is summed per step rather than computed from the totals.
        if (id_.model)
            if (auto c = cost_usd(*id_.model, usage))
                cost_ = cost_.value_or(0) + *c;
        step_reason_ = std::string(finish_reason);
        step_done_ = true;
        maybe_next_step();
    }

    void on_error(std::string_view message) override
    {
        stream_.reset();
        if (state_ != state::running)
            return;
        finish(storage::status::error, "error", std::string(message));
    }

private:
    enum class state
    {
        running,
        finishing, ///< terminal state submitted, not yet committed
        finished
    };

    // A tool call of this generation; result_json is set once committed.
    using tool_state = replay_tool;

    void mark_dirty()
    {
        if (!dirty_.exchange(true, std::memory_order_acq_rel))
            hub_->mark_dirty(shared_from_this());
    }

    // A reasoning block ends when the answer, a tool call or the step's end
    // comes; the first block's end is thinking_completed_at (DESIGN.md §9).
    void end_reasoning()
    {
        if (!reasoning_open_)
            return;
        reasoning_open_ = false;
        if (!thinking_completed_at_)
            thinking_completed_at_ = core::now_ms();
        log_->append_reasoning_event(events::reasoning_end(id_.message_id));
    }

    // tokens_per_second counts the time tokens stream: from each step's
    // first token to its end, so neither the wait for the first token nor
    // the time spent in tools between steps lowers it.
    void token_arrived()
    {
        if (!step_first_token_)
            step_first_token_ = clock::now();
    }
    void step_ended()
    {
        if (step_first_token_)
            streaming_seconds_ +=
                std::chrono::duration<double>(clock::now() - *step_first_token_).count();
        step_first_token_.reset();
    }

    tool_state* find_tool(std::string_view id)
    {
        for (auto& t : tools_)
            if (t.id == id)
                return &t;
        return nullptr;
    }

    void start_step()
    {
        provider_request req;
        req.messages = history_;
        req.model = id_.model;
        req.step = step_;
        req.output_tokens_so_far = output_tokens_;
        for (auto const& t : tools_)
            if (t.result_json)
                req.tool_results.push_back({t.id, t.name, t.args_json, *t.result_json});
        step_done_ = false;
        stream_ = ctx_.model.start(strand_, std::move(req), shared_from_this());
    }

    // The result goes into the call's row; tool-output-* waits for the commit.
    void store_tool_result(storage::tool_call_row row, std::string json)
    {
        // Stopped or failed meanwhile: finish has finalized the row already
        // (a late upsert would make it partial again after the terminal state).
        if (state_ != state::running)
        {
            --pending_tools_;
            return;
        }
        row.result = json;
        auto tool_id = row.tool_call_id;
        ctx_.writer.submit(
            [row = std::move(row)](storage::database& db)
            {
                storage::tool_calls::upsert(db, row);
                storage::nodes::notify(db, storage::nodes::progress_channel, row.message_id);
            },
            [self = shared_from_this(), tool_id = std::move(tool_id),
             json = std::move(json)](std::error_code ec) mutable
            {
                net::post(self->strand_,
                          [self, tool_id = std::move(tool_id), json = std::move(json), ec]() mutable
                          { self->on_tool_committed(tool_id, std::move(json), ec); });
            });
    }

    void on_tool_committed(std::string const& tool_id, std::string json, std::error_code ec)
    {
        --pending_tools_;
        if (state_ != state::running)
            return;
        if (ec)
            return finish(storage::status::error, "error",
                          "could not store tool call: " + ec.message());
        if (auto* t = find_tool(tool_id))
        {
            t->result_json = std::move(json);
            broadcast(tool_output(id_.message_id, t->id, *t->result_json));
        }
        maybe_next_step();
    }

    void maybe_next_step()
    {
        if (!step_done_ || pending_tools_ > 0 || state_ != state::running)
            return;
        if (step_reason_ == "tool-calls" && step_ + 1 < ctx_.max_steps)
        {
            ++step_;
            return start_step();
        }
        finish(storage::status::complete, step_reason_, std::nullopt);
    }

public:
    // The batched flush (stream_hub::state::flush_tick) --------------------
    // Called by the flusher only, one batch at a time.

    void clear_dirty() { dirty_.store(false, std::memory_order_release); }

    /// The bytes added since the last committed flush; nullopt when none or
    /// when the end is being committed (it carries the whole text).
    std::optional<flush_item> take_flush()
    {
        if (finishing_.load(std::memory_order_acquire))
            return std::nullopt;
        auto text = log_->copy_text(flushed_bytes_);
        auto reasoning = log_->copy_reasoning(flushed_reasoning_bytes_);
        if (text.empty() && reasoning.empty())
            return std::nullopt;
        flush_item item;
        item.gen = shared_from_this();
        item.message_id = id_.message_id;
        item.byte_start = static_cast<std::int64_t>(flushed_bytes_);
        item.text = std::move(text);
        if (!first_flushed_ && !item.text.empty())
            if (auto const t = first_token_ms_.load(std::memory_order_relaxed))
                item.first_token_at = t;
        item.reasoning_byte_start = static_cast<std::int64_t>(flushed_reasoning_bytes_);
        item.reasoning = std::move(reasoning);
        if (!thinking_flushed_ && !item.reasoning.empty())
            if (auto const t = thinking_started_ms_.load(std::memory_order_relaxed))
                item.thinking_started_at = t;
        return item;
    }

    void flush_done(flush_item const& item, bool committed)
    {
        if (!committed)
        {
            // Try again next tick from the same offset (the key makes it idempotent).
            if (!dirty_.exchange(true, std::memory_order_acq_rel))
                hub_->mark_dirty(shared_from_this());
            return;
        }
        flushed_bytes_ = static_cast<std::size_t>(item.byte_start) + item.text.size();
        flushed_reasoning_bytes_ =
            static_cast<std::size_t>(item.reasoning_byte_start) + item.reasoning.size();
        if (item.first_token_at)
            first_flushed_ = true;
        if (item.thinking_started_at)
            thinking_flushed_ = true;
    }

private:
    void finish(std::string status, std::string reason, std::optional<std::string> error)
    {
        state_ = state::finishing;
        finishing_.store(true, std::memory_order_release);
        if (stream_)
        {
            stream_->cancel(); // aborts the upstream now, not at the next token
            stream_.reset();
        }
        end_reasoning();
        step_ended();
        output_tokens_ += step_chunks_ + step_reasoning_chunks_;
        reasoning_tokens_ += step_reasoning_chunks_;
        step_chunks_ = 0;
        step_reasoning_chunks_ = 0;

        storage::messages::completion c;
        c.status = status;
        c.content = std::string(log_->text_unlocked());
        c.error = error;
        c.finish_reason = reason;
        c.input_tokens = input_tokens_;
        c.output_tokens = output_tokens_;
        c.cost = cost_;
        c.first_token_at = first_token_at_;
        c.completed_at = core::now_ms();
        if (output_tokens_ > 0 && streaming_seconds_ > 0)
            c.tokens_per_second = static_cast<double>(output_tokens_) / streaming_seconds_;
        if (thinking_started_at_)
        {
            c.reasoning = std::string(log_->reasoning_unlocked());
            c.reasoning_tokens = reasoning_tokens_;
            c.thinking_started_at = thinking_started_at_;
            c.thinking_completed_at = thinking_completed_at_;
        }

        completion_ = std::move(c); // kept for the retries below
        commit_final(events::finish_info{status, reason, input_tokens_, output_tokens_, error,
                                         reasoning_tokens_},
                     0);
    }

    // A lock held by another process past the busy timeout is transient:
    // the finished answer is committed as it is if the lock goes within this
    // many more busy timeouts; only then does the client get an error.
    static constexpr int max_busy_retries = 2;

    // Commits completion_ (tool calls finalized + terminal status) before
    // the finish event goes out.
    void commit_final(events::finish_info info, int busy_retries)
    {
        ctx_.writer.submit(
            [id = id_, c = *completion_](storage::database& db)
            {
                // Usage is counted in the transaction that makes the message
                // terminal, so it is never counted twice nor lost.
                if (storage::messages::finish(db, id.message_id, c))
                    storage::usage::add_completion(db, id.user_id, id.day, id.model.value_or(""),
                                                   c.input_tokens.value_or(0),
                                                   c.output_tokens.value_or(0), c.cost.value_or(0));
                end_claim(db, id.message_id);
            },
            [self = shared_from_this(), info = std::move(info), busy_retries](std::error_code ec) mutable
            {
                net::post(self->strand_,
                          [self, info = std::move(info), ec, busy_retries]() mutable
                          {
                              if (ec == storage::errc::busy && busy_retries < max_busy_retries)
                              {
                                  spdlog::warn("generation {}: final commit: {}, retrying",
                                               self->id_.message_id, ec.message());
                                  return self->commit_final(std::move(info), busy_retries + 1);
                              }
                              self->on_finished(std::move(info), ec);
                          });
            });
    }

    // The end could not be stored (disk full, database locked) and the client
    // was told so. Keep storing it, as `error` with the text so far, so the
    // row does not stay `generating` (and its tool calls partial) until the
    // next restart. Found by the disk-full fault test (issue #9).
    void retry_final_commit(std::string why, int attempt)
    {
        if (attempt >= 120 || !completion_)
            return;
        retry_timer_.expires_after(std::chrono::milliseconds(250 << std::min(attempt, 4)));
        retry_timer_.async_wait(
            [self = shared_from_this(), why = std::move(why), attempt](boost::system::error_code ec)
            {
                if (ec)
                    return;
                auto c = *self->completion_;
                c.status = storage::status::error;
                c.error = "could not store the end of the generation: " + why;
                c.completed_at = core::now_ms();
                self->ctx_.writer.submit(
                    [id = self->id_.message_id, c = std::move(c)](storage::database& db)
                    {
                        storage::messages::finish(db, id, c);
                        end_claim(db, id);
                    },
                    [self, why, attempt](std::error_code ec)
                    {
                        if (ec)
                            net::post(self->strand_, [self, why, attempt]
                                      { self->retry_final_commit(why, attempt + 1); });
                    });
            });
    }

    void on_finished(events::finish_info info, std::error_code ec)
    {
        state_ = state::finished;
        if (ec)
        {
            spdlog::error("generation {}: final commit failed: {}", id_.message_id, ec.message());
            final_ = events::error({}, id_.message_id, wire_error::internal,
                                   "could not store the end of the generation: " + ec.message());
            retry_final_commit(ec.message(), 0);
        }
        else
            final_ = events::finish(id_.message_id, info);
        final_status_ = ec ? std::string(storage::status::error) : info.status;
        if (!ec)
        {
            boost::json::object change{{"status", info.status},
                                       {"finishReason", info.finish_reason},
                                       {"inputTokens", info.input_tokens},
                                       {"outputTokens", info.output_tokens},
                                       {"reasoningTokens", info.reasoning_tokens},
                                       {"cost", cost_ ? boost::json::value(*cost_) : nullptr}};
            if (auto const& tps = completion_->tokens_per_second)
                change["tokensPerSecond"] = *tps;
            if (info.error)
                change["error"] = *info.error;
            publish_update(std::move(change));
        }
        // Free the conversation before anyone hears `finish`: a client that
        // sends its next message right after it must not get `conflict`.
        auto drained = hub_->release(id_.conversation_id, id_.message_id);
        ctx_.metrics.active_generations.fetch_sub(1, std::memory_order_relaxed);
        // Counted before anyone hears `finish`, so a client that reads
        // /metrics after it knows whether a title request follows.
        bool const title =
            !ec && info.status == storage::status::complete && id_.wants_title && ctx_.auto_title;
        if (title)
            ctx_.metrics.titles_requested.fetch_add(1, std::memory_order_relaxed);
        log_->close(*final_); // every follower hears it after the rest of the log
        // The row now holds this very text: readers still behind (a client
        // that stopped reading) fetch the rest from it, so a finished answer
        // is not kept in memory for them (issue 19).
        if (!ec)
            log_->release_text();
        for (auto& w : watchers_)
            deliver_to(w, *final_);
        watchers_.clear();
        followers_.clear();
        pumps_.clear(); // a pump delivered everything when the log closed
        if (drained)
            drained();
        if (title)
            suggest_title();
    }

    void publish(frame const& f)
    {
        if (ctx_.changes)
            ctx_.changes->publish(id_.user_id, f);
    }

    void publish_update(boost::json::object fields)
    {
        publish(events::changed("message", "update", id_.message_id, id_.conversation_id,
                                boost::json::serialize(fields)));
    }

    // Auto-title: one short provider request after the first complete answer
    // of a "New Chat". Best effort: a failure or timeout leaves the title.
    void suggest_title();

    void do_subscribe(std::string const& user_id, std::weak_ptr<subscriber> const& s,
                      subscribe_request const& req)
    {
        if (user_id != id_.user_id)
            return deliver_to(
                s, events::error(req.id, req.message_id, wire_error::not_found, "no such message"));
        // Finished, and its text is now only in the committed row.
        if (log_->released())
            return subscribe_stored(ctx_, user_id, req, s);
        auto const from = log_->cursor_at(req.from_offset, req.from_reasoning_offset);
        if (!from)
        {
            auto const reasoning_length = core::utf16_length(log_->reasoning_unlocked());
            if (req.from_reasoning_offset > reasoning_length)
                return deliver_to(
                    s, events::error(req.id, req.message_id, wire_error::bad_request,
                                     "fromReasoningOffset " +
                                         std::to_string(req.from_reasoning_offset) +
                                         " is past the end of the reasoning (" +
                                         std::to_string(reasoning_length) + ")"));
            return deliver_to(s, events::error(req.id, req.message_id, wire_error::bad_request,
                                               "fromOffset " + std::to_string(req.from_offset) +
                                                   " is past the end of the text (" +
                                                   std::to_string(log_->u16_length_unlocked()) +
                                                   ")"));
        }
        follow(s, *from);
    }

    // A new reader of the log: it starts with `start`, then everything past
    // @p from, then live events, then the final one.
    void follow(std::weak_ptr<subscriber> const& w, stream_log::cursor from)
    {
        auto s = w.lock();
        if (!s)
            return;
        if (!log_->closed())
            followers_.push_back(w);
        if (auto keep = s->follow(log_, from, w))
            if (!log_->closed())
                pumps_.push_back(std::move(keep));
    }

    // A canceller that is not following still hears the finish.
    void add_watcher(std::weak_ptr<subscriber> const& s)
    {
        auto sp = s.lock();
        if (!sp)
            return;
        for (auto const& w : followers_)
            if (w.lock() == sp)
                return;
        watchers_.push_back(s);
    }

    void broadcast(frame f) { log_->append_event(std::move(f)); }

    std::shared_ptr<stream_hub::state> hub_;
    hub_context& ctx_;
    strand_type strand_;
    identity id_;
    std::vector<chat_message> history_;
    std::shared_ptr<stream_log> log_; ///< the text and events so far, read by every follower
    std::optional<double> cost_; ///< USD, when the model is in the price table
    net::steady_timer retry_timer_;

    state state_ = state::running;
    std::vector<std::weak_ptr<subscriber>> followers_;  ///< identities only (for add_watcher)
    std::vector<std::shared_ptr<void>> pumps_;         ///< default followers, until the end
    std::vector<std::weak_ptr<subscriber>> watchers_;
    std::shared_ptr<provider_stream> stream_;
    std::vector<tool_state> tools_;
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

//------------------------------------------------------------------------------

namespace
{

constexpr std::string_view title_prompt =
    "Write a short title (at most six words) for a conversation that starts with the "
    "user's message below. Reply with the title only: no quotes, no final period.";

/// Collects a title suggestion. Calls @p done exactly once (nullopt on error).
class title_sink : public provider_sink
{
public:
    explicit title_sink(std::function<void(std::optional<std::string>)> done)
        : done_(std::move(done))
    {
    }
    void on_text(std::string_view text) override
    {
        if (text_.size() < 1024)
            text_ += text;
    }
    void on_tool_input_start(std::string_view, std::string_view) override {}
    void on_tool_input_delta(std::string_view, std::string_view) override {}
    void on_tool_call(std::string_view, std::string_view, std::string_view) override {}
    void on_step_finish(std::string_view, step_usage) override { complete(std::move(text_)); }
    void on_error(std::string_view) override { complete(std::nullopt); }
    void complete(std::optional<std::string> title)
    {
        if (auto done = std::exchange(done_, {}))
            done(std::move(title));
    }

private:
    std::function<void(std::optional<std::string>)> done_;
    std::string text_;
};

// One line, no surrounding quotes or final period, at most 80 bytes cut on
// a code point boundary.
std::string clean_title(std::string_view raw)
{
    std::string out;
    bool space = false;
    for (char c : raw)
    {
        if (std::isspace(static_cast<unsigned char>(c)))
            space = !out.empty();
        else
        {
            if (space)
                out += ' ';
            space = false;
            out += c;
        }
    }
    auto strip = [&](std::string_view chars)
    {
        while (!out.empty() && chars.find(out.front()) != std::string_view::npos)
            out.erase(0, 1);
        while (!out.empty() && chars.find(out.back()) != std::string_view::npos)
            out.pop_back();
    };
    strip("\"'`*#");
    while (!out.empty() && out.back() == '.')
        out.pop_back();
    if (out.size() > 80)
        out.resize(core::complete_utf8_prefix(std::string_view(out).substr(0, 80)));
    return out;
}

} // namespace

//------------------------------------------------------------------------------

void stream_hub::state::mark_dirty(std::shared_ptr<generation> const& g)
{
    std::lock_guard lock(flush_mutex);
    dirty.push_back(g);
    arm_flush_locked();
}

void stream_hub::state::arm_flush_locked()
{
    if (flush_armed || flush_in_flight || dirty.empty())
        return;
    flush_armed = true;
    if (!flush_timer)
        flush_timer.emplace(net::make_strand(ctx.ioc));
    flush_timer->expires_after(ctx.flush_interval);
    flush_timer->async_wait(
        [weak = weak_from_this()](boost::system::error_code ec)
        {
            if (ec)
                return;
            if (auto st = weak.lock())
                st->flush_tick();
        });
}

void stream_hub::state::flush_tick()
{
    std::vector<std::shared_ptr<generation>> gens;
    {
        std::lock_guard lock(flush_mutex);
        flush_armed = false;
        flush_in_flight = true;
        gens.reserve(dirty.size());
        for (auto const& w : dirty)
            if (auto g = w.lock())
                gens.push_back(std::move(g));
        dirty.clear();
    }
    auto batch = std::make_shared<std::vector<flush_item>>();
    for (auto const& g : gens)
    {
        g->clear_dirty(); // text appended after the copy below marks it again
        if (auto item = g->take_flush())
            batch->push_back(std::move(*item));
    }
    if (batch->empty())
    {
        std::lock_guard lock(flush_mutex);
        flush_in_flight = false;
        return arm_flush_locked();
    }
    auto const submitted = clock::now();
    ctx.writer.submit(
        [batch](storage::database& db)
        {
            auto const now = core::now_ms();
            for (auto const& i : *batch)
            {
                if (!i.reasoning.empty())
                    storage::messages::append_partial_reasoning(db, i.message_id,
                                                                i.reasoning_byte_start, i.reasoning,
                                                                i.thinking_started_at, now);
                if (!i.text.empty())
                    storage::messages::append_partial(db, i.message_id, i.byte_start, i.text,
                                                      i.first_token_at, now);
                storage::nodes::notify(db, storage::nodes::progress_channel, i.message_id);
            }
        },
        [weak = weak_from_this(), batch, submitted](std::error_code ec)
        {
            auto st = weak.lock();
            if (!st)
                return;
            auto const us =
                std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - submitted);
            if (ec)
                spdlog::warn("partial flush of {} generations failed: {}", batch->size(),
                             ec.message());
            for (auto const& i : *batch)
            {
                if (!ec)
                    st->ctx.metrics.record_flush(static_cast<std::uint64_t>(us.count()));
                i.gen->flush_done(i, !ec);
            }
            std::lock_guard lock(st->flush_mutex);
            st->flush_in_flight = false;
            st->arm_flush_locked();
        });
}

//------------------------------------------------------------------------------

void generation::suggest_title()
{
    provider_request req;
    req.title = true;
    req.model = id_.model;
    req.messages = {{"system", std::string(title_prompt)}, {"user", id_.title_source}};
    // The timer's handler owns the generation while the request runs; the
    // sink (owned by the stream, which the generation owns) only points back
    // weakly, so an io_context torn down mid-request leaves no cycle behind.
    auto done = [weak = weak_from_this()](std::optional<std::string> raw)
    {
        auto self = weak.lock();
        if (!self)
            return;
        self->title_timer_->cancel();
        self->title_stream_.reset();
        if (!raw)
            return;
        auto title = clean_title(*raw);
        if (title.empty())
            return;
        self->ctx_.writer.submit(
            [id = self->id_.conversation_id, title](storage::database& db)
            {
                if (!storage::conversations::set_generated_title(db, id, title, core::now_ms()))
                    throw storage::storage_error(storage::errc::conflict, "renamed meanwhile");
            },
            [self, title](std::error_code ec)
            {
                if (!ec)
                    self->publish(events::changed(
                        "conversation", "update", self->id_.conversation_id,
                        self->id_.conversation_id,
                        boost::json::serialize(boost::json::object{{"title", title}})));
            });
    };
    auto sink = std::make_shared<title_sink>(std::move(done));
    title_timer_.emplace(strand_, ctx_.title_timeout);
    title_timer_->async_wait(
        [self = shared_from_this(), sink](boost::system::error_code ec)
        {
            if (ec)
                return;
            if (self->title_stream_)
                self->title_stream_->cancel();
            sink->complete(std::nullopt);
        });
    title_stream_ = ctx_.model.start(strand_, std::move(req), sink);
}

//------------------------------------------------------------------------------

stream_hub::stream_hub(hub_context const& ctx) : state_(std::make_shared<state>(ctx)) {}

stream_hub::~stream_hub() = default;

std::size_t stream_hub::active() const
{
    std::lock_guard lock(state_->mutex);
    return state_->by_conversation.size();
}

std::optional<std::string> stream_hub::running_message(std::string const& user_id,
                                                       std::string const& conversation_id) const
{
    std::lock_guard lock(state_->mutex);
    auto c = state_->by_conversation.find(conversation_id);
    if (c == state_->by_conversation.end() || c->second.empty())
        return std::nullopt; // idle, or still being created (no message yet)
    auto m = state_->by_message.find(c->second);
    if (m == state_->by_message.end() || m->second->user_id() != user_id)
        return std::nullopt;
    return c->second;
}

namespace
{

/// A refusal decided inside an accept job (conflict, quota, not found): it
/// rolls the job back and becomes the requester's `error` event.
struct refusal
{
    wire_error code;
    std::string message;
};

/// What an accept job decides, read by its completion.
struct launch_plan
{
    generation::identity id;
    std::vector<chat_message> history;
    std::optional<frame> reply;   ///< ack / result, the requester's first frame
    std::vector<frame> changes;   ///< `changed` events, published once committed
    std::optional<refusal> refused;
    bool reserved = false;        ///< holds the conversation's slot
};

// The counters after a message was added or removed, read in the same job.
frame conversation_counters(storage::database& db, std::string const& user_id,
                            std::string const& conversation_id)
{
    auto c = storage::conversations::get(db, user_id, conversation_id);
    if (!c)
        throw storage::storage_error(storage::errc::not_found, "no such conversation");
    return detail::conversation_counters_changed(*c);
}

// The new assistant message every accept job inserts, plus its accounting.
storage::message_row insert_pending_answer(storage::database& db, generation::identity const& id,
                                           std::int64_t now)
{
    storage::message_row m;
    m.id = id.message_id;
    m.conversation_id = id.conversation_id;
    m.user_id = id.user_id;
    m.role = "assistant";
    m.status = storage::status::pending;
    m.model = id.model;
    m.created_at = m.updated_at = now;
    storage::messages::insert(db, m);
    storage::usage::add_message(db, id.user_id, id.day, id.model.value_or(""));
    return m;
}

// Provider context: the conversation's system prompt, then every visible
// message before the new answer (read inside the accept transaction).
void load_history(storage::database& db, storage::conversation_row const& conv,
                  launch_plan& plan)
{
    if (conv.system_prompt && !conv.system_prompt->empty())
        plan.history.push_back({"system", *conv.system_prompt});
    for (auto& row : storage::messages::history(db, conv.id))
    {
        if (row.id == plan.id.message_id)
            continue;
        if (row.role == "user" && plan.id.title_source.empty())
            plan.id.title_source = row.content;
        if (row.role != "assistant" || !row.content.empty())
            plan.history.push_back(
                {row.role, std::move(row.content), std::move(row.reasoning).value_or("")});
    }
    plan.id.wants_title = conv.title == "New Chat";
}

} // namespace

bool stream_hub::running_in(std::string const& conversation_id) const
{
    std::lock_guard lock(state_->mutex);
    return state_->by_conversation.contains(conversation_id);
}

namespace
{

// The accept path shared by generate, regenerate and retry: rate limit, then
// one writer job that reserves the conversation (one generation at a time),
// checks quotas and writes; its completion starts the generation and
// publishes the changes, or reports the refusal.
template <class Body>
void launch(std::shared_ptr<stream_hub::state> const& st, std::string const& user_id,
            request_id const& rid, std::weak_ptr<subscriber> requester, Body body)
{
    if (st->ctx.rate)
        if (auto wait = st->ctx.rate->acquire(user_id))
            return deliver_to(requester,
                              events::error(rid, std::nullopt, wire_error::rate_limited,
                                            "too many generations: at most " +
                                                std::to_string(static_cast<long long>(
                                                    st->ctx.rate->per_minute())) +
                                                " per minute; retry in " +
                                                std::to_string((wait->count() + 999) / 1000) +
                                                " s"));
    auto plan = std::make_shared<launch_plan>();
    plan->id.user_id = user_id;
    plan->id.model = st->ctx.default_model;
    auto reserve = [st, plan](storage::database& db, std::string const& conversation_id)
    {
        {
            std::lock_guard lock(st->mutex);
            if (st->stopping)
                throw refusal{wire_error::internal, "server is shutting down"};
            if (!st->by_conversation.emplace(conversation_id, std::string()).second)
                throw refusal{wire_error::conflict,
                              "a generation is already running in conversation " + conversation_id};
            plan->reserved = true;
            plan->id.conversation_id = conversation_id;
        }
        // Another node may run one there: the claims table says so.
        if (st->ctx.cluster && storage::nodes::busy_in_conversation(db, conversation_id))
            throw refusal{wire_error::conflict, "a generation is already running in conversation " +
                                                    conversation_id + " (on another node)"};
    };
    auto check_quota = [st, plan](storage::database& db, std::int64_t now)
    {
        if (auto why = quota_violation(db, plan->id.user_id, now, st->ctx.quota))
            throw refusal{wire_error::quota_exceeded, std::move(*why)};
    };
    st->ctx.writer.submit(
        [st, plan, body = std::move(body), reserve, check_quota](storage::database& db)
        {
            try
            {
                body(db, *plan, reserve, check_quota);
                if (st->ctx.cluster)
                    storage::nodes::claim(db, plan->id.message_id, st->ctx.cluster->node_id(),
                                          core::now_ms());
            }
            catch (refusal& r)
            {
                // Rolls back this job's savepoint; the completion reads the reason.
                plan->refused = std::move(r);
                throw storage::storage_error(storage::errc::conflict, plan->refused->message);
            }
        },
        [st, plan, rid, requester](std::error_code ec)
        {
            if (ec)
            {
                std::function<void()> drained;
                if (plan->reserved)
                    drained = st->release(plan->id.conversation_id, {});
                auto const r = plan->refused
                                   ? *plan->refused
                                   : refusal{to_wire_error(ec),
                                             "could not store the message: " + ec.message()};
                deliver_to(requester, events::error(rid, std::nullopt, r.code, r.message));
                if (drained)
                    drained();
                return;
            }
            // The generation runs on its requester's strand: its tokens reach
            // that socket with no hand-off between threads.
            std::optional<session_strand> home;
            if (auto r = requester.lock())
                home = r->home_strand();
            auto gen = std::make_shared<generation>(st, plan->id, std::move(plan->history),
                                                    std::move(home));
            bool stopping = false;
            {
                std::lock_guard lock(st->mutex);
                st->by_message[plan->id.message_id] = gen;
                st->by_conversation[plan->id.conversation_id] = plan->id.message_id;
                stopping = st->stopping;
            }
            st->ctx.metrics.active_generations.fetch_add(1, std::memory_order_relaxed);
            st->ctx.metrics.generations_total.fetch_add(1, std::memory_order_relaxed);
            if (st->ctx.changes)
                for (auto const& f : plan->changes)
                    st->ctx.changes->publish(plan->id.user_id, f);
            gen->start(requester, std::move(*plan->reply));
            if (stopping)
                gen->stop();
        });
}

/// The row of one `generate` attachment (issue 20, finding 9): type, MIME
/// type, size and image dimensions are what was stored, not what the client
/// claims; the client's name is sanitised (else the stored name); its other
/// metadata (duration, prompt, model, ...) is kept.
storage::attachment_row attachment_of(attachment_input const& claimed,
                                      storage::files::attachable_file const& stored,
                                      storage::message_row const& message, std::int64_t position)
{
    storage::attachment_row row;
    row.message_id = message.id;
    row.conversation_id = message.conversation_id;
    row.user_id = message.user_id;
    row.position = position;
    row.storage_id = claimed.storage_id;
    row.mime_type = stored.mime_type;
    row.type = stored.type ? *stored.type : core::attachment_type(stored.mime_type);
    row.size = stored.size;
    row.name = core::sanitize_file_name(claimed.name, stored.name);
    if (claimed.metadata || stored.metadata)
        row.metadata = core::merge_json_objects(claimed.metadata.value_or(""),
                                                stored.metadata.value_or(""), {"width", "height"});
    row.created_at = message.created_at;
    return row;
}

} // namespace

void stream_hub::generate(std::string const& user_id, generate_request req,
                          std::weak_ptr<subscriber> requester)
{
    auto r = std::make_shared<generate_request>(std::move(req));
    auto body = [r](storage::database& db, launch_plan& plan, auto const& reserve,
                    auto const& check_quota)
    {
        auto const now = core::now_ms();
        bool const new_conversation = !r->conversation_id;
        // Ownership before the reservation: another user's conversation id
        // answers not_found, never `conflict` (which would tell them it
        // exists and is busy), and never holds the owner's conversation.
        std::optional<storage::conversation_row> conv;
        if (!new_conversation &&
            !(conv = storage::conversations::get(db, plan.id.user_id, *r->conversation_id)))
            throw refusal{wire_error::not_found, "no such conversation: " + *r->conversation_id};
        reserve(db, new_conversation ? core::new_id() : *r->conversation_id);
        auto& id = plan.id;
        // Only files the caller uploaded or already attached (issue 11);
        // checked in this job so the garbage collector cannot interleave.
        std::vector<storage::files::attachable_file> stored;
        stored.reserve(r->attachments.size());
        for (std::size_t i = 0; i < r->attachments.size(); ++i)
        {
            auto f = storage::files::find_attachable(db, id.user_id, r->attachments[i].storage_id);
            if (!f)
                throw refusal{wire_error::not_found, "attachments[" + std::to_string(i) +
                                                         "]: no such file: " +
                                                         r->attachments[i].storage_id};
            stored.push_back(std::move(*f));
        }
        if (r->model)
            id.model = r->model;
        id.day = core::utc_day(now);
        if (new_conversation)
        {
            storage::conversation_row c;
            c.id = id.conversation_id;
            c.user_id = id.user_id;
            c.model = id.model;
            c.created_at = c.updated_at = now;
            storage::conversations::insert(db, c);
            conv = c;
        }
        check_quota(db, now);

        storage::message_row u;
        u.id = core::new_id();
        u.conversation_id = id.conversation_id;
        u.user_id = id.user_id;
        u.role = "user";
        u.content = r->content;
        u.status = storage::status::complete;
        u.created_at = u.updated_at = now;
        storage::messages::insert(db, u);
        for (std::size_t i = 0; i < r->attachments.size(); ++i)
            storage::attachments::insert(
                db, attachment_of(r->attachments[i], stored[i], u, static_cast<std::int64_t>(i)));
        id.message_id = core::new_id(); // sorts after the user message
        auto const answer = insert_pending_answer(db, id, now);
        load_history(db, *conv, plan);

        if (new_conversation)
            plan.changes.push_back(detail::conversation_inserted(*conv));
        plan.changes.push_back(detail::message_inserted(u));
        plan.changes.push_back(detail::message_inserted(answer));
        plan.changes.push_back(conversation_counters(db, id.user_id, id.conversation_id));
        plan.reply = events::ack(r->id, id.conversation_id, u.id, id.message_id);
    };
    launch(state_, user_id, r->id, std::move(requester), std::move(body));
}

void stream_hub::regenerate(std::string const& user_id, mutate_request req,
                            std::weak_ptr<subscriber> requester)
{
    auto r = std::make_shared<mutate_request>(std::move(req));
    auto body = [r](storage::database& db, launch_plan& plan, auto const& reserve,
                    auto const& check_quota)
    {
        auto const now = core::now_ms();
        bool const retry = r->name == mutation_name::retry;
        auto old = storage::messages::get(db, plan.id.user_id, *r->message_id);
        if (!old)
            throw refusal{wire_error::not_found, "no such message: " + *r->message_id};
        if (old->role != "assistant")
            throw refusal{wire_error::bad_request, std::string(retry ? "retry" : "regenerate") +
                                                       " needs an assistant message"};
        reserve(db, old->conversation_id);
        if (retry && old->status != storage::status::error &&
            old->status != storage::status::stopped && old->status != storage::status::interrupted)
            throw refusal{wire_error::conflict,
                          "retry needs an answer that ended with error, stopped or interrupted "
                          "(this one is " + old->status + "); use regenerate"};
        auto conv = storage::conversations::get(db, plan.id.user_id, old->conversation_id);
        if (!conv)
            throw refusal{wire_error::not_found, "no such conversation"};
        check_quota(db, now);

        auto& id = plan.id;
        if (old->model)
            id.model = old->model;
        id.day = core::utc_day(now);
        auto const removed = storage::messages::remove_from(db, *old, now);
        id.message_id = core::new_id();
        auto const answer = insert_pending_answer(db, id, now);
        load_history(db, *conv, plan);

        boost::json::array removed_ids;
        for (auto const& m : removed)
        {
            removed_ids.emplace_back(m);
            plan.changes.push_back(events::changed("message", "delete", m, id.conversation_id,
                                                   std::nullopt));
        }
        plan.changes.push_back(detail::message_inserted(answer));
        plan.changes.push_back(conversation_counters(db, id.user_id, id.conversation_id));
        plan.reply = events::result(
            r->id, boost::json::serialize(boost::json::object{
                       {"conversationId", id.conversation_id},
                       {"messageId", id.message_id},
                       {"replacedMessageId", old->id},
                       {"removedMessageIds", std::move(removed_ids)}}));
    };
    launch(state_, user_id, r->id, std::move(requester), std::move(body));
}

namespace
{

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

} // namespace

void stream_hub::subscribe(std::string const& user_id, subscribe_request req,
                           std::weak_ptr<subscriber> s)
{
    if (auto gen = state_->find(req.message_id))
        return gen->subscribe(user_id, std::move(s), std::move(req));
    // It may be generating on another node: follow it through the database.
    if (state_->ctx.cluster)
        return state_->ctx.cluster->follow(user_id, std::move(req), std::move(s));

    // Not running here: replay from the database. A generation leaves the
    // map only after its terminal state is committed, so this read sees it.
    subscribe_stored(state_->ctx, user_id, std::move(req), std::move(s));
}

void subscribe_stored(hub_context& ctx, std::string const& user_id, subscribe_request req,
                      std::weak_ptr<subscriber> s)
{
    auto const message_id = req.message_id;
    auto id = req.id;
    with_stored_message(
        ctx.reads, user_id, message_id, std::move(id), std::move(s),
        [req = std::move(req)](storage::database& db, subscriber& sub,
                               storage::message_row const& m)
        {
            auto const stored = read_stored_replay(db, m);
            if (req.from_offset > core::utf16_length(stored.text))
                return sub.deliver(events::error(req.id, m.id, wire_error::bad_request,
                                                 "fromOffset " + std::to_string(req.from_offset) +
                                                     " is past the end of the text"));
            if (req.from_reasoning_offset > core::utf16_length(stored.reasoning))
                return sub.deliver(events::error(
                    req.id, m.id, wire_error::bad_request,
                    "fromReasoningOffset " + std::to_string(req.from_reasoning_offset) +
                        " is past the end of the reasoning"));
            sub.deliver(events::start(m.id, m.conversation_id));
            // Reasoning first, from 0 unless the client has part of it.
            if (!stored.reasoning.empty())
                replay_reasoning(m.id, stored.reasoning, req.from_reasoning_offset,
                                 req.from_reasoning_offset == 0, true,
                                 [&](frame f) { sub.deliver(std::move(f)); });
            replay_frames(m.id, stored.text, stored.tools, req.from_offset,
                          [&](frame f) { sub.deliver(std::move(f)); });
            if (stored.terminal)
                sub.deliver(stored_finish(m));
        });
}

void stream_hub::cancel(std::string const& user_id, cancel_request req, std::weak_ptr<subscriber> s)
{
    if (auto gen = state_->find(req.message_id))
        return gen->cancel(user_id, std::move(s), std::move(req.id));
    if (state_->ctx.cluster)
        return state_->ctx.cluster->cancel(user_id, std::move(req), std::move(s));
    auto id = req.id;
    with_stored_message(
        state_->ctx.reads, user_id, req.message_id, req.id, std::move(s),
        [id](storage::database&, subscriber& sub, storage::message_row const& m)
        {
            sub.deliver(events::error(id, m.id, wire_error::conflict,
                                      "message is not generating (status " + m.status + ")"));
        });
}

void stream_hub::stop_here(std::string const& message_id)
{
    if (auto gen = state_->find(message_id))
        gen->stop_requested();
}

void stream_hub::shutdown(std::function<void()> done)
{
    std::vector<std::shared_ptr<generation>> running;
    std::function<void()> drained;
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
        state_->on_drained = std::move(done);
        for (auto const& [id, gen] : state_->by_message)
            running.push_back(gen);
        drained = state_->take_drained_if_idle();
    }
    for (auto const& gen : running)
        gen->stop();
    if (drained)
        drained();
}

} // namespace chatstream::streaming
