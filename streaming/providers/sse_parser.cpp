// Server-Sent Events framing, incremental and bounded.
#include "chatstream/streaming/sse_parser.hpp"

#include <algorithm>

namespace chatstream::streaming
{

namespace
{
constexpr std::string_view utf8_bom = "\xEF\xBB\xBF";
} // namespace

sse_parser::sse_parser(std::size_t max_event_bytes) : max_(max_event_bytes) {}

void sse_parser::feed(std::string_view bytes)
{
    if (failed_ || bytes.empty())
        return;
    compact();
    buf_.append(bytes);
}

bool sse_parser::has_partial_event() const noexcept
{
    return pos_ < buf_.size() || has_fields_;
}

// Drops consumed input so the buffer holds at most one partial line.
void sse_parser::compact()
{
    if (pos_ == 0)
        return;
    if (pos_ == buf_.size())
        buf_.clear();
    else if (pos_ < buf_.size() / 2 && buf_.size() < 64 * 1024)
        return; // not worth a move yet
    else
        buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
}

std::optional<sse_event> sse_parser::next()
{
    if (failed_)
        return std::nullopt;
    if (!bom_checked_)
    {
        // Wait until the first three bytes are known to be (or not be) a BOM.
        auto const head = std::string_view(buf_).substr(pos_, utf8_bom.size());
        if (head.size() < utf8_bom.size() && utf8_bom.starts_with(head))
            return std::nullopt;
        if (head == utf8_bom)
            pos_ += utf8_bom.size();
        bom_checked_ = true;
        scan_ = std::max(scan_, pos_);
    }
    for (;;)
    {
        if (skip_lf_ && pos_ < buf_.size())
        {
            if (buf_[pos_] == '\n')
                ++pos_;
            skip_lf_ = false;
            scan_ = std::max(scan_, pos_);
        }
        auto const eol = buf_.find_first_of("\r\n", scan_);
        if (eol == std::string::npos)
        {
            scan_ = buf_.size();
            if (buf_.size() - pos_ > max_)
                failed_ = true;
            return std::nullopt;
        }
        std::string_view const line(buf_.data() + pos_, eol - pos_);
        skip_lf_ = buf_[eol] == '\r';
        pos_ = scan_ = eol + 1;
        if (line.size() > max_)
            failed_ = true;
        if (failed_)
            return std::nullopt;
        if (on_line(line))
            return std::move(ready_);
    }
}

bool sse_parser::on_line(std::string_view line)
{
    if (line.empty())
    {
        // Dispatch: an event without data is dropped, but its type is reset.
        bool const dispatch = !data_.empty();
        has_fields_ = false;
        if (dispatch)
        {
            data_.pop_back(); // the '\n' after the last data line
            ready_.type = type_.empty() ? "message" : std::move(type_);
            ready_.data = std::move(data_);
            ready_.id = last_id_;
        }
        data_.clear();
        type_.clear();
        return dispatch;
    }
    if (line.front() == ':')
    {
        ++comments_;
        return false;
    }
    has_fields_ = true;
    std::string_view field = line;
    std::string_view value;
    if (auto const colon = line.find(':'); colon != std::string_view::npos)
    {
        field = line.substr(0, colon);
        value = line.substr(colon + 1);
        if (!value.empty() && value.front() == ' ')
            value.remove_prefix(1);
    }
    if (field == "data")
    {
        if (data_.size() + value.size() + 1 > max_)
        {
            failed_ = true;
            return false;
        }
        data_.append(value);
        data_.push_back('\n');
    }
    else if (field == "event")
        type_.assign(value);
    else if (field == "id")
    {
        if (value.find('\0') == std::string_view::npos)
            last_id_.assign(value);
    }
    // `retry` only matters to a reconnecting client; other fields are ignored.
    return false;
}

} // namespace chatstream::streaming
