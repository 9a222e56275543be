#include "chatstream/streaming/stream_log.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <algorithm>

namespace chatstream::streaming
{
namespace
{

// Moves up to @p max_bytes of @p all[byte, end) into @p out, cut on a code
// point boundary, and advances the byte and UTF-16 positions.
void take_text(std::string_view all, std::size_t& byte, std::uint64_t& u16, std::size_t end,
               std::size_t max_bytes, std::string& out)
{
    auto const rest = all.substr(byte, end - byte);
    auto n = rest.size();
    if (n > max_bytes)
    {
        n = core::complete_utf8_prefix(rest.substr(0, max_bytes));
        if (n == 0) // one code point longer than the bound: send it whole
            n = std::min(rest.size(), core::complete_utf8_prefix(rest.substr(0, 4)));
        if (n == 0)
            n = rest.size(); // never loop on malformed text
    }
    out.assign(rest.data(), n);
    byte += n;
    u16 += core::utf16_length(out);
}

} // namespace

stream_log::stream_log(std::string message_id, std::string conversation_id)
    : message_id_(std::move(message_id)), conversation_id_(std::move(conversation_id))
{
}

void stream_log::append_text(std::string_view utf8)
{
    if (utf8.empty())
        return;
    auto const units = core::utf16_length(utf8);
    std::unique_lock lock(mutex_);
    text_ += utf8;
    text_bytes_ = text_.size();
    u16_len_ += units;
    wake_all(lock);
}

void stream_log::append_reasoning(std::string_view utf8)
{
    if (utf8.empty())
        return;
    auto const units = core::utf16_length(utf8);
    std::unique_lock lock(mutex_);
    reasoning_ += utf8;
    reasoning_bytes_ = reasoning_.size();
    reasoning_u16_len_ += units;
    wake_all(lock);
}

void stream_log::append_event(frame f)
{
    std::unique_lock lock(mutex_);
    if (closed_)
        return;
    events_.push_back({text_.size(), reasoning_.size(), false, std::move(f)});
    wake_all(lock);
}

void stream_log::append_reasoning_event(frame f)
{
    std::unique_lock lock(mutex_);
    if (closed_)
        return;
    events_.push_back({text_.size(), reasoning_.size(), true, std::move(f)});
    wake_all(lock);
}

void stream_log::close(frame final_event)
{
    std::unique_lock lock(mutex_);
    if (closed_)
        return;
    events_.push_back({text_.size(), reasoning_.size(), false, std::move(final_event)});
    closed_ = true;
    // Readers still behind keep the log alive after the generation is gone;
    // they need the text, not the slack its doubling growth left.
    text_.shrink_to_fit();
    reasoning_.shrink_to_fit();
    events_.shrink_to_fit();
    wake_all(lock);
}

void stream_log::release_text()
{
    std::lock_guard lock(mutex_);
    if (!closed_)
        return;
    released_ = true;
    std::string().swap(text_);
    std::string().swap(reasoning_);
}

bool stream_log::released() const
{
    std::lock_guard lock(mutex_);
    return released_;
}

void stream_log::advance_stored(cursor& c, std::string_view piece)
{
    auto const units = core::utf16_length(piece);
    if (c.stored.reasoning)
    {
        c.reasoning_byte += piece.size();
        c.reasoning_u16 += units;
    }
    else
    {
        c.byte += piece.size();
        c.u16 += units;
    }
}

void stream_log::wake_all(std::unique_lock<std::mutex>& lock)
{
    if (waiting_.empty())
        return;
    // Woken outside the lock: a listener may pull (and lock) right away.
    // Swapped with a member, not moved out: both vectors keep their
    // capacity, so the wake of every token allocates nothing. Only the
    // appender (one thread) calls this, so woken_ needs no lock.
    woken_.swap(waiting_);
    lock.unlock();
    for (auto const& w : woken_)
        if (auto l = w.lock())
            l->on_log_ready();
    woken_.clear();
}

std::optional<stream_log::cursor> stream_log::cursor_at(std::uint64_t from,
                                                        std::uint64_t reasoning_from) const
{
    std::lock_guard lock(mutex_);
    if (released_ || from > u16_len_ || reasoning_from > reasoning_u16_len_)
        return std::nullopt;
    cursor c;
    // An offset inside a surrogate pair rounds down: the pair goes out whole.
    c.byte = core::utf8_offset_of_utf16(text_, from);
    c.u16 = core::utf16_length(std::string_view(text_).substr(0, c.byte));
    c.reasoning_byte = core::utf8_offset_of_utf16(reasoning_, reasoning_from);
    c.reasoning_u16 = core::utf16_length(std::string_view(reasoning_).substr(0, c.reasoning_byte));
    c.skip_text_events_before = c.byte;
    c.skip_reasoning_events_before = c.reasoning_byte;
    return c;
}

bool stream_log::skipped(cursor const& c, entry const& e) const noexcept
{
    // The final event comes after everything, whatever the offsets: a
    // reader joining a finished message still hears how it ended.
    if (closed_ && &e == &events_.back())
        return false;
    return e.reasoning_marker ? e.reasoning_byte_at < c.skip_reasoning_events_before
                              : e.byte_at < c.skip_text_events_before;
}

stream_log::item stream_log::next(cursor& c, std::string& text, std::uint64_t& offset, frame& event,
                                  std::size_t max_text_bytes,
                                  std::weak_ptr<log_listener> const& wake)
{
    if (!c.started)
    {
        c.started = true;
        event = events::start(message_id_, conversation_id_);
        return item::event;
    }
    std::lock_guard lock(mutex_);
    if (c.done)
        return item::none;
    while (c.event < events_.size() && skipped(c, events_[c.event]))
        ++c.event;
    entry const* const e = c.event < events_.size() ? &events_[c.event] : nullptr;
    if (e && e->byte_at <= c.byte && e->reasoning_byte_at <= c.reasoning_byte)
    {
        event = e->f;
        ++c.event;
        c.done = closed_ && c.event == events_.size();
        return item::event;
    }
    // Up to the next event, reasoning first: it is what a model produces
    // before its answer.
    auto const reasoning_end =
        e ? std::min(reasoning_bytes_, e->reasoning_byte_at) : reasoning_bytes_;
    auto const text_end = e ? std::min(text_bytes_, e->byte_at) : text_bytes_;
    if (released_ && (c.reasoning_byte < reasoning_end || c.byte < text_end))
    {
        bool const reasoning = c.reasoning_byte < reasoning_end;
        c.stored = {reasoning, reasoning ? c.reasoning_byte : c.byte,
                    reasoning ? reasoning_end : text_end, reasoning ? c.reasoning_u16 : c.u16};
        return item::stored;
    }
    if (c.reasoning_byte < reasoning_end)
    {
        offset = c.reasoning_u16;
        take_text(reasoning_, c.reasoning_byte, c.reasoning_u16, reasoning_end, max_text_bytes,
                  text);
        return item::reasoning;
    }
    if (c.byte < text_end)
    {
        offset = c.u16;
        take_text(text_, c.byte, c.u16, text_end, max_text_bytes, text);
        return item::text;
    }
    if (!wake.expired())
    {
        auto const same = [&](std::weak_ptr<log_listener> const& w)
        { return !w.owner_before(wake) && !wake.owner_before(w); };
        if (std::none_of(waiting_.begin(), waiting_.end(), same))
            waiting_.push_back(wake);
    }
    return item::none;
}

std::string stream_log::copy_text(std::size_t from) const
{
    std::lock_guard lock(mutex_);
    if (from >= text_.size())
        return {};
    return text_.substr(from);
}

std::string stream_log::copy_reasoning(std::size_t from) const
{
    std::lock_guard lock(mutex_);
    if (from >= reasoning_.size())
        return {};
    return reasoning_.substr(from);
}

bool stream_log::closed() const
{
    std::lock_guard lock(mutex_);
    return closed_;
}

std::uint64_t stream_log::u16_length() const
{
    std::lock_guard lock(mutex_);
    return u16_len_;
}

std::uint64_t stream_log::reasoning_u16_length() const
{
    std::lock_guard lock(mutex_);
    return reasoning_u16_len_;
}

} // namespace chatstream::streaming
