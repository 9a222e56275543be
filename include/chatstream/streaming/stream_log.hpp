#pragma once
/// @file stream_log.hpp
/// The append-only record of what one generation produced, read by cursors.
///
/// A generation appends its text (UTF-8, complete code points), its
/// reasoning (a second text, docs/design.md §9) and its other events (tool calls,
/// reasoning-start/-end, the final `finish`) to one shared log. Every
/// subscriber holds a cursor into it instead of a queue of copies: when its
/// socket can take a write, it asks the log for what lies past its cursor.
/// The text since the cursor comes back as one `text-delta` at the cursor's
/// UTF-16 offset (bounded per frame), other events come back in order, each
/// at the text position where it happened. Reasoning comes back the same way
/// as `reasoning-delta`s at their UTF-16 offset into the reasoning text;
/// between two events, reasoning goes before text. A fast reader therefore gets
/// every token as it comes; a slow reader costs O(1) beyond the shared log.
#include "chatstream/streaming/outbound_queue.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::streaming
{

/// Something a log wakes when it grows: a subscriber waiting at the end.
class log_listener
{
public:
    virtual ~log_listener() = default;
    /// The log has something past the listener's cursor. Called once per
    /// wait, from the appending thread, outside the log's lock. Must not block.
    virtual void on_log_ready() = 0;
};

class stream_log
{
public:
    /// A reader's position: bytes and UTF-16 units of text and of reasoning
    /// consumed, the index of the next non-text event, whether `start` went
    /// out, and which events a resuming reader already has.
    struct cursor
    {
        std::size_t byte = 0;
        std::uint64_t u16 = 0;
        std::size_t reasoning_byte = 0;
        std::uint64_t reasoning_u16 = 0;
        std::size_t event = 0;
        std::size_t skip_text_events_before = 0;      ///< text byte: the reader has those
        std::size_t skip_reasoning_events_before = 0; ///< reasoning byte: likewise
        bool started = false;
        bool done = false; ///< the final event was handed out
        /// After item::stored: the bytes to read from the committed row
        /// before calling advance_stored.
        struct stored_range
        {
            bool reasoning = false;
            std::size_t byte = 0;  ///< first byte
            std::size_t end = 0;   ///< one past the last byte (a code point boundary)
            std::uint64_t u16 = 0; ///< UTF-16 offset of `byte`
        } stored;
    };

    /// What `next` hands out.
    enum class item
    {
        none,      ///< nothing past the cursor yet (the listener will be woken)
        text,      ///< `text` holds raw UTF-8 starting at UTF-16 offset `offset`
        reasoning, ///< likewise, of the reasoning text
        event,     ///< `event` holds a serialized frame
        /// The text was released (release_text): the reader fetches
        /// `cursor::stored` from the committed message, then advance_stored.
        stored,
    };

    stream_log(std::string message_id, std::string conversation_id);

    std::string const& message_id() const noexcept { return message_id_; }
    std::string const& conversation_id() const noexcept { return conversation_id_; }

    // Appender side: one thread (the generation's strand) at a time. -------

    /// Appends @p utf8 (complete code points) and wakes waiting readers.
    void append_text(std::string_view utf8);

    /// Appends reasoning (complete code points) and wakes waiting readers.
    void append_reasoning(std::string_view utf8);

    /// Appends a non-text event at the current end of the text.
    void append_event(frame f);

    /// Appends `reasoning-start` / `reasoning-end`: events a resuming reader
    /// gets again unless it already has the reasoning past them.
    void append_reasoning_event(frame f);

    /// Appends the final event; nothing may follow it.
    void close(frame final_event);

    /// Frees the text and the reasoning of a closed log once the message's
    /// final row (the same text) is committed: a reader still behind, e.g. a
    /// client that stopped reading, then gets item::stored and reads the rest
    /// from the database in bounded pieces, instead of holding the whole
    /// answer in memory for as long as it stays connected (issue 19).
    void release_text();
    bool released() const;

    /// Moves @p c past @p piece, the bytes read for `c.stored` (a prefix of
    /// that range, whole code points). Reader's side; the cursor is its own.
    static void advance_stored(cursor& c, std::string_view piece);

    /// The text so far. Appender's thread only (no lock: it is the only writer).
    std::string_view text_unlocked() const noexcept { return text_; }
    std::uint64_t u16_length_unlocked() const noexcept { return u16_len_; }
    std::string_view reasoning_unlocked() const noexcept { return reasoning_; }

    // Reader side: thread-safe. ---------------------------------------------

    /// A cursor for a reader that already has the text up to UTF-16 offset
    /// @p from and the reasoning up to @p reasoning_from (each rounded down
    /// to a code point). Events before those offsets are skipped, events at
    /// or after them are replayed in order.
    /// @return nullopt when an offset is past the end of its text, or when
    ///         the text was released (a new reader replays from the database).
    std::optional<cursor> cursor_at(std::uint64_t from, std::uint64_t reasoning_from = 0) const;

    /// Copies the next item past @p c into @p text / @p event and advances
    /// @p c. Text is cut at @p max_text_bytes on a code point boundary (a
    /// single code point longer than that still goes out whole). When there
    /// is nothing, @p wake (if set) is registered and woken by the next
    /// append; registering and checking happen under one lock, so no append
    /// is missed.
    item next(cursor& c, std::string& text, std::uint64_t& offset, frame& event,
              std::size_t max_text_bytes, std::weak_ptr<log_listener> const& wake = {});

    /// A copy of the text from byte @p from on (empty when there is none).
    std::string copy_text(std::size_t from) const;
    /// Likewise, of the reasoning.
    std::string copy_reasoning(std::size_t from) const;

    /// True once the final event was appended.
    bool closed() const;

    /// UTF-16 length of the text so far.
    std::uint64_t u16_length() const;
    /// UTF-16 length of the reasoning so far.
    std::uint64_t reasoning_u16_length() const;

private:
    struct entry
    {
        std::size_t byte_at;           ///< the text length (bytes) when it was appended
        std::size_t reasoning_byte_at; ///< the reasoning length likewise
        bool reasoning_marker;         ///< reasoning-start/-end
        frame f;
    };

    bool skipped(cursor const& c, entry const& e) const noexcept;

    void wake_all(std::unique_lock<std::mutex>& lock);

    std::string const message_id_;
    std::string const conversation_id_;
    mutable std::mutex mutex_;
    std::string text_;
    std::uint64_t u16_len_ = 0;
    std::string reasoning_;
    std::uint64_t reasoning_u16_len_ = 0;
    bool released_ = false;
    std::size_t text_bytes_ = 0;      ///< text_.size(), kept once released
    std::size_t reasoning_bytes_ = 0; ///< likewise
    std::vector<entry> events_;
    bool closed_ = false;
    std::vector<std::weak_ptr<log_listener>> waiting_;
    std::vector<std::weak_ptr<log_listener>> woken_; ///< appender's scratch for wake_all
};

} // namespace chatstream::streaming
