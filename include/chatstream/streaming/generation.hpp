#pragma once
/// @file generation.hpp
/// The generation engine: runs generations independently of sockets and fans
/// their events out to any number of subscribers (docs/design.md §6).
#include "chatstream/storage/types.hpp"
#include "chatstream/streaming/metrics.hpp"
#include "chatstream/streaming/outbound_queue.hpp"
#include "chatstream/streaming/protocol.hpp"
#include "chatstream/streaming/provider.hpp"
#include "chatstream/streaming/quota.hpp"
#include "chatstream/streaming/stream_log.hpp"
#include "chatstream/streaming/tools.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace chatstream::storage
{
class database;
class writer;
class read_pool;
} // namespace chatstream::storage

namespace chatstream::streaming
{

class change_feed;
class cluster;

/// The strand a session (and a generation it starts) runs on.
using session_strand = boost::asio::strand<boost::asio::io_context::executor_type>;

/// Something that receives serialized events: a WebSocket session, the AI
/// SDK endpoint, or a test.
class subscriber
{
public:
    virtual ~subscriber() = default;
    /// Queues @p f for this subscriber. Thread-safe and non-blocking: called
    /// from generation strands and read-pool threads; frames delivered from
    /// one thread arrive in order.
    virtual void deliver(frame f) = 0;

    /// Follows a live generation's log from cursor @p from (which emits
    /// `start` first). Thread-safe. The default pumps every item into
    /// deliver() as soon as it is appended (for transports bounded
    /// elsewhere, and tests); a WebSocket session overrides it to pull only
    /// when its socket can take a write (a slow reader costs a cursor).
    /// @p self is this subscriber, held weakly by the pump.
    /// @return what must stay alive while the generation runs (the pump),
    /// or null.
    virtual std::shared_ptr<void> follow(std::shared_ptr<stream_log> log, stream_log::cursor from,
                                         std::weak_ptr<subscriber> self);

    /// The strand this subscriber's I/O runs on, when it has one: a
    /// generation it starts runs there too, so a token reaches the socket
    /// with no thread hand-off.
    virtual std::optional<session_strand> home_strand() const { return std::nullopt; }
};

/// Delivers @p f to @p w if it is still alive.
void deliver_to(std::weak_ptr<subscriber> const& w, frame f);

/// What the hub runs on. Everything referenced must outlive the hub and every
/// generation it started (i.e. until the I/O threads are joined).
/// Link previews of cited URLs (docs/design.md §9): one best-effort fetch per
/// new URL, stored on its source_metadata row, announced as `changed`.
/// Never delays a generation. Thread-safe.
class source_enrichment
{
public:
    virtual ~source_enrichment() = default;
    /// @p url is normalized, @p url_hash its key; a URL already being
    /// fetched is not fetched twice.
    virtual void enrich(std::string url_hash, std::string url) = 0;
};

struct hub_context
{
    boost::asio::io_context& ioc;
    storage::writer& writer;
    storage::read_pool& reads;
    provider& model;
    tool_registry const& tools;
    server_metrics& metrics;
    std::chrono::milliseconds flush_interval{50};
    int max_steps = 5; ///< tool loop bound (docs/design.md §7)
    /// The model of a generate that names none (`serve --model`): stored with
    /// the message and used for its cost.
    std::optional<std::string> default_model;
    /// `watch` fan-out of committed changes; null = no change events.
    change_feed* changes = nullptr;
    /// Checked in the write that accepts a generation.
    quota_limits quota;
    /// Per-user flood control of generate/regenerate/retry; null = none.
    rate_limiter* rate = nullptr;
    /// Auto-title: name a "New Chat" after its first complete answer.
    bool auto_title = true;
    /// Auto-title: the longest a provider may take to suggest a title.
    std::chrono::milliseconds title_timeout{20'000};
    /// Other nodes on the same PostgreSQL database; null = this node alone.
    streaming::cluster* cluster = nullptr;
    /// Link previews of new sources; null = none (`--no-enrich`).
    source_enrichment* enrichment = nullptr;
};

/// Starts, finds, resumes and stops generations.
///
/// A generation runs on its own strand and holds its subscribers weakly, so a
/// socket that goes away never stops it. All SQLite work goes through the
/// writer (writes) and the read pool (reads); completions are posted back to
/// the generation's strand. Replies (ack, errors, events) reach the caller
/// through its subscriber. Every public function is thread-safe.
class stream_hub
{
public:
    explicit stream_hub(hub_context const& ctx);
    ~stream_hub();
    stream_hub(stream_hub const&) = delete;
    stream_hub& operator=(stream_hub const&) = delete;

    /// Creates the conversation when absent (checks ownership otherwise), the
    /// user message with its attachments and a pending assistant message in
    /// one write, then acks and streams to @p requester. One generation per
    /// conversation: a second one gets `conflict`.
    void generate(std::string const& user_id, generate_request req,
                  std::weak_ptr<subscriber> requester);

    /// `regenerate` / `retry` (a mutate_request of that name): in one write,
    /// deletes the assistant message and every later message of its
    /// conversation and inserts a new pending answer; replies `result`, then
    /// streams. The history is what remains (the visible conversation).
    /// retry needs an answer that ended `error`, `stopped` or `interrupted`.
    void regenerate(std::string const& user_id, mutate_request req,
                    std::weak_ptr<subscriber> requester);

    /// True while a generation runs (or is being accepted) in the
    /// conversation. Mutations call it inside their writer job: generations
    /// are accepted in writer jobs too, so the answer cannot go stale
    /// before the mutation commits.
    bool running_in(std::string const& conversation_id) const;

    /// Replays the text of a message from UTF-16 offset `from_offset` (from
    /// memory while it is generating, from the database once it is done),
    /// then streams live events.
    void subscribe(std::string const& user_id, subscribe_request req, std::weak_ptr<subscriber> s);

    /// Stops a running generation (status `stopped`, partial text kept);
    /// every subscriber and @p s get its `finish`.
    void cancel(std::string const& user_id, cancel_request req, std::weak_ptr<subscriber> s);

    /// Stops the generation of @p message_id if it runs on this node (a
    /// `cancel` that arrived on another node, already checked there).
    void stop_here(std::string const& message_id);

    /// Refuses new generations, stops the running ones and calls @p done once
    /// each has committed its terminal state. @p done runs on some I/O thread.
    void shutdown(std::function<void()> done);

    /// Generations currently running or committing their end.
    std::size_t active() const;

    /// The message currently generating in @p conversation_id, when there is
    /// one and it belongs to @p user_id (someone else's answers nullopt, as
    /// an idle conversation does). For `GET /api/chat/{id}/stream`.
    std::optional<std::string> running_message(std::string const& user_id,
                                               std::string const& conversation_id) const;

    struct state;

private:
    std::shared_ptr<state> state_;
};

/// Replays @p text from UTF-16 offset @p from, interleaving the tool calls at
/// or after @p from at their text positions. Text goes out in deltas of at
/// most 16 KiB, cut on code point boundaries. Used by both replay paths and
/// exposed for tests.
struct replay_tool
{
    std::string id;
    std::string name;
    std::string args_json;
    std::optional<std::string> result_json;
    std::uint64_t text_position = 0;
};
void replay_frames(std::string_view message_id, std::string_view text,
                   std::vector<replay_tool> const& tools, std::uint64_t from,
                   std::function<void(frame)> const& emit);

/// Replays @p reasoning from UTF-16 offset @p from as `reasoning-delta`s,
/// after `reasoning-start` when @p open and before `reasoning-end` when
/// @p close (docs/design.md §9).
void replay_reasoning(std::string_view message_id, std::string_view reasoning, std::uint64_t from,
                      bool open, bool close, std::function<void(frame)> const& emit);

/// A stored message as a replay sees it: its text so far (`content` once
/// terminal, else `partial_content`) and its tool calls that have a result.
/// Shared by the local replay and the cross-node follower (cluster.cpp).
struct stored_replay
{
    std::string text;
    std::string reasoning; ///< `reasoning` once terminal, else partial_reasoning
    std::vector<replay_tool> tools;
    /// `source` events in position order. A stored citation has no text
    /// position (docs/design.md §9), so a replay sends them after the text
    /// and tool calls, before `finish`; clients key them by position.
    std::vector<frame> sources;
    bool terminal = false;
};
stored_replay read_stored_replay(storage::database& db, storage::message_row const& m);

/// The `finish` of a terminal stored message.
frame stored_finish(storage::message_row const& m);

} // namespace chatstream::streaming
