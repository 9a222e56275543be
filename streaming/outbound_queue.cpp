#include "chatstream/streaming/outbound_queue.hpp"

namespace chatstream::streaming
{

bool outbound_queue::push(frame f)
{
    auto const n = f.size();
    if (frames_.size() + 1 > limits_.max_frames || bytes_ + n > limits_.max_bytes)
        return false;
    bytes_ += n;
    frames_.push_back(std::move(f));
    return true;
}

frame outbound_queue::pop()
{
    frame out = std::move(frames_.front());
    frames_.pop_front();
    bytes_ -= out.size();
    if (!out.mergeable() || frames_.empty())
        return out;

    // Merge only deltas that continue this one exactly: same identity prefix
    // (same message) and contiguous UTF-16 ranges, so two subscriptions to
    // one message on one socket are never mixed up.
    auto continues = [&](frame const& next, frame const& head, std::size_t built)
    {
        return next.mergeable() && next.key_len == head.key_len && next.u16_begin == head.u16_end &&
               built + (next.size() - next.delta_begin) <= limits_.max_merge_bytes &&
               next.data->compare(0, next.key_len, *head.data, 0, head.key_len) == 0;
    };
    if (!continues(frames_.front(), out, out.size()))
        return out;

    // Payload layout: <prefix ... "delta":"><escaped text>"}
    std::string merged(*out.data, 0, out.size() - 2);
    while (!frames_.empty() && continues(frames_.front(), out, merged.size()))
    {
        frame next = std::move(frames_.front());
        frames_.pop_front();
        bytes_ -= next.size();
        merged.append(*next.data, next.delta_begin, next.size() - 2 - next.delta_begin);
        out.u16_end = next.u16_end;
        ++merged_;
    }
    merged += "\"}";
    out.data = std::make_shared<std::string const>(std::move(merged));
    return out;
}

} // namespace chatstream::streaming
