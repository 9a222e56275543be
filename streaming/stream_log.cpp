#include "chatstream/streaming/stream_log.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <algorithm>

namespace chatstream::streaming
{

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
    u16_len_ += units;
    wake_all(lock);
}

void stream_log::append_event(frame f)
{
    std::unique_lock lock(mutex_);
    if (closed_)
        return;
    events_.push_back({text_.size(), std::move(f)});
    wake_all(lock);
}

void stream_log::close(frame final_event)
{
    std::unique_lock lock(mutex_);
    if (closed_)
        return;
    events_.push_back({text_.size(), std::move(final_event)});
    closed_ = true;
    // Readers still behind keep the log alive after the generation is gone;
    // they need the text, not the slack its doubling growth left.
    text_.shrink_to_fit();
    events_.shrink_to_fit();
    wake_all(lock);
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

std::optional<stream_log::cursor> stream_log::cursor_at(std::uint64_t from) const
{
    std::lock_guard lock(mutex_);
    if (from > u16_len_)
        return std::nullopt;
    cursor c;
    // An offset inside a surrogate pair rounds down: the pair goes out whole.
    c.byte = core::utf8_offset_of_utf16(text_, from);
    c.u16 = core::utf16_length(std::string_view(text_).substr(0, c.byte));
    auto const first = std::find_if(events_.begin(), events_.end(),
                                    [&](entry const& e) { return e.byte_at >= c.byte; });
    c.event = static_cast<std::size_t>(first - events_.begin());
    // The final event comes after everything, whatever the offset: a reader
    // joining a finished message still hears how it ended.
    if (closed_ && c.event == events_.size())
        c.event = events_.size() - 1;
    return c;
}

stream_log::item stream_log::next(cursor& c, std::string& text, std::uint64_t& offset,
                                  frame& event, std::size_t max_text_bytes,
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
    if (c.event < events_.size() && events_[c.event].byte_at <= c.byte)
    {
        event = events_[c.event].f;
        ++c.event;
        c.done = closed_ && c.event == events_.size();
        return item::event;
    }
    auto end = text_.size();
    if (c.event < events_.size())
        end = std::min(end, events_[c.event].byte_at);
    if (c.byte < end)
    {
        auto const rest = std::string_view(text_).substr(c.byte, end - c.byte);
        auto n = rest.size();
        if (n > max_text_bytes)
        {
            n = core::complete_utf8_prefix(rest.substr(0, max_text_bytes));
            if (n == 0) // one code point longer than the bound: send it whole
                n = std::min(rest.size(), core::complete_utf8_prefix(rest.substr(0, 4)));
            if (n == 0)
                n = rest.size(); // never loop on malformed text
        }
        text.assign(rest.data(), n);
        offset = c.u16;
        c.byte += n;
        c.u16 += core::utf16_length(text);
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

} // namespace chatstream::streaming
