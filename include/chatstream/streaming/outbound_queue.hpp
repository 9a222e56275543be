#pragma once
/// @file outbound_queue.hpp
/// The per-socket queue of serialized events waiting to be written. No I/O:
/// the session owns one and drives the single write in flight from it.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace chatstream::streaming
{

/// One serialized server event, ready to become one WebSocket text frame.
///
/// `data` is shared by every subscriber of the event (serialized once). A
/// `text-delta` also carries what is needed to merge it with the next delta
/// of the same message without re-parsing: the length of its identity prefix
/// (`{"type":"text-delta","messageId":"..."`), where its escaped delta text
/// starts, and the UTF-16 range it covers.
struct frame
{
    std::shared_ptr<std::string const> data;
    std::uint32_t key_len = 0;     ///< 0 = not mergeable
    std::uint32_t delta_begin = 0; ///< first byte of the escaped delta text
    std::uint64_t u16_begin = 0;
    std::uint64_t u16_end = 0;

    std::size_t size() const noexcept { return data ? data->size() : 0; }
    bool mergeable() const noexcept { return key_len != 0; }
};

/// Bounds of one socket's outbound queue.
struct outbound_limits
{
    std::size_t max_frames = 8192;           ///< queued events
    std::size_t max_bytes = 8u << 20;        ///< queued payload bytes
    std::size_t max_merge_bytes = 64u << 10; ///< largest delta built by merging
};

/// FIFO of frames bounded by count and bytes.
///
/// When the socket is backed up (several frames queued behind the write in
/// flight), `pop` merges adjacent `text-delta`s of one message that continue
/// each other into one event that keeps the first `offset`: fewer frames for
/// the same text, and never a merge of events of different kinds or messages.
///
/// Thread-safety: none; a session touches its queue only on its strand.
class outbound_queue
{
public:
    explicit outbound_queue(outbound_limits const& limits = {}) : limits_(limits) {}

    /// Queues @p f. @return false when it would exceed a bound; the frame is
    /// then not queued and the caller must drop the connection (policy close).
    bool push(frame f);

    /// Removes the next frame to write, merged with the deltas that continue
    /// it. Precondition: `!empty()`.
    frame pop();

    bool empty() const noexcept { return frames_.empty(); }
    std::size_t size() const noexcept { return frames_.size(); }
    std::size_t bytes() const noexcept { return bytes_; }
    /// Number of frames folded into a previous one so far.
    std::uint64_t merged() const noexcept { return merged_; }
    void clear() noexcept
    {
        frames_.clear();
        bytes_ = 0;
    }

private:
    outbound_limits limits_;
    std::deque<frame> frames_;
    std::size_t bytes_ = 0;
    std::uint64_t merged_ = 0;
};

} // namespace chatstream::streaming
