// Replay: what a reader that joins late, or follows a finished message, is
// sent — the stored text, reasoning and tool calls from an offset, as the
// same events the live stream sent.
#include "detail/live_generation.hpp"

namespace chatstream::streaming
{

namespace
{

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

} // namespace

frame tool_output(std::string_view message_id, std::string_view id, std::string_view result_json)
{
    if (auto failure = tool_failure(result_json))
        return events::tool_output_error(message_id, id, *failure);
    return events::tool_output_available(message_id, id, result_json);
}

namespace
{

// Emits @p text[byte, end) as deltas of at most replay_chunk_bytes, cut on
// code point boundaries, advancing @p byte and @p u16.
template <class MakeDelta>
void emit_deltas(MakeDelta const& make, std::string_view text, std::size_t& byte,
                 std::uint64_t& u16, std::size_t end, std::function<void(frame)> const& emit)
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
    for (auto const& s : storage::sources::rows_for_message(db, m.id))
        r.sources.push_back(events::source(m.id, s.position, s.url, s.title, s.snippet));
    return r;
}

frame stored_finish(storage::message_row const& m)
{
    return events::finish(m.id,
                          {m.status, m.finish_reason.value_or(m.status), m.input_tokens.value_or(0),
                           m.output_tokens.value_or(0), m.error, m.reasoning_tokens.value_or(0)});
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
                return sub.deliver(events::error(req.id, m.id, wire_error::bad_request,
                                                 "fromReasoningOffset " +
                                                     std::to_string(req.from_reasoning_offset) +
                                                     " is past the end of the reasoning"));
            sub.deliver(events::start(m.id, m.conversation_id));
            // Reasoning first, from 0 unless the client has part of it.
            if (!stored.reasoning.empty())
                replay_reasoning(m.id, stored.reasoning, req.from_reasoning_offset,
                                 req.from_reasoning_offset == 0, true,
                                 [&](frame f) { sub.deliver(std::move(f)); });
            replay_frames(m.id, stored.text, stored.tools, req.from_offset,
                          [&](frame f) { sub.deliver(std::move(f)); });
            for (auto const& f : stored.sources)
                sub.deliver(f);
            if (stored.terminal)
                sub.deliver(stored_finish(m));
        });
}

} // namespace chatstream::streaming
