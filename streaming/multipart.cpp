#include "chatstream/streaming/multipart.hpp"

#include <algorithm>
#include <cctype>

namespace chatstream::streaming
{
namespace
{

std::string lower(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s)
{
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

/// Splits `a; k=v; k2="v 2"` into the value and its parameters, calling
/// @p param(lowercased key, unquoted value). Quoted strings may hold `;`.
template <class F> std::string_view parse_params(std::string_view s, F&& param)
{
    auto const semi = s.find(';');
    auto const head = trim(s.substr(0, semi));
    std::size_t i = semi == std::string_view::npos ? s.size() : semi + 1;
    while (i < s.size())
    {
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == ';'))
            ++i;
        auto const eq = s.find('=', i);
        if (eq == std::string_view::npos)
            break;
        auto const key = lower(trim(s.substr(i, eq - i)));
        i = eq + 1;
        while (i < s.size() && (s[i] == ' ' || s[i] == '\t'))
            ++i;
        std::string value;
        if (i < s.size() && s[i] == '"')
        {
            for (++i; i < s.size() && s[i] != '"'; ++i)
            {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                value += s[i];
            }
            ++i; // closing quote
        }
        else
        {
            auto const end = std::min(s.find(';', i), s.size());
            value = std::string(trim(s.substr(i, end - i)));
            i = end;
        }
        param(key, std::move(value));
    }
    return head;
}

} // namespace

std::optional<std::string> multipart_parser::boundary_of(std::string_view content_type)
{
    std::optional<std::string> boundary;
    auto const type = parse_params(content_type,
                                   [&](std::string const& k, std::string v)
                                   {
                                       if (k == "boundary")
                                           boundary = std::move(v);
                                   });
    if (lower(type) != "multipart/form-data")
        return std::nullopt;
    // RFC 2046: 1 to 70 characters.
    if (!boundary || boundary->empty() || boundary->size() > 70)
        return std::nullopt;
    return boundary;
}

multipart_parser::multipart_parser(std::string const& boundary, on_part_fn on_part,
                                   on_data_fn on_data)
    : delimiter_("\r\n--" + boundary), on_part_(std::move(on_part)), on_data_(std::move(on_data))
{
    // The first delimiter may open the body without a preceding CRLF.
    pending_ = "\r\n";
}

bool multipart_parser::fail(std::string why)
{
    state_ = state::failed;
    error_ = std::move(why);
    pending_.clear();
    return false;
}

bool multipart_parser::parse_headers(std::string_view block)
{
    current_ = {};
    bool disposition = false;
    while (!block.empty())
    {
        auto const eol = block.find("\r\n");
        auto const line = block.substr(0, eol);
        block = eol == std::string_view::npos ? std::string_view() : block.substr(eol + 2);
        if (line.empty())
            continue;
        auto const colon = line.find(':');
        if (colon == std::string_view::npos)
            return fail("malformed part header");
        auto const key = lower(trim(line.substr(0, colon)));
        auto const value = trim(line.substr(colon + 1));
        if (key == "content-disposition")
        {
            disposition = true;
            auto const kind = parse_params(value,
                                           [&](std::string const& k, std::string v)
                                           {
                                               if (k == "name")
                                                   current_.name = std::move(v);
                                               else if (k == "filename")
                                                   current_.filename = std::move(v);
                                           });
            if (lower(kind) != "form-data")
                return fail("part is not form-data");
        }
        else if (key == "content-type")
            current_.content_type = std::string(value);
    }
    if (!disposition)
        return fail("part without Content-Disposition");
    keep_ = on_part_(current_);
    return true;
}

bool multipart_parser::feed(std::string_view data)
{
    if (state_ == state::failed)
        return false;
    if (state_ == state::epilogue)
        return true; // ignored, as RFC 2046 says
    pending_.append(data);
    std::size_t pos = 0; // consumed prefix of pending_
    for (;;)
    {
        std::string_view rest(pending_.data() + pos, pending_.size() - pos);
        if (state_ == state::preamble || state_ == state::body)
        {
            auto const at = rest.find(delimiter_);
            if (at == std::string_view::npos)
            {
                // Everything but a possible delimiter prefix at the end is data.
                auto const safe =
                    rest.size() >= delimiter_.size() ? rest.size() - delimiter_.size() + 1 : 0;
                if (state_ == state::body && keep_ && safe)
                    on_data_(rest.substr(0, safe));
                pos += safe;
                break;
            }
            if (state_ == state::body && keep_ && at)
                on_data_(rest.substr(0, at));
            pos += at + delimiter_.size();
            state_ = state::after_delimiter;
        }
        else if (state_ == state::after_delimiter)
        {
            // "--" closes the body; otherwise optional whitespace, then CRLF.
            std::size_t i = 0;
            if (rest.size() >= 2 && rest.substr(0, 2) == "--")
            {
                state_ = state::epilogue;
                pending_.clear();
                return true;
            }
            while (i < rest.size() && (rest[i] == ' ' || rest[i] == '\t'))
                ++i;
            if (i + 2 > rest.size())
            {
                if (rest.size() > 128)
                    return fail("malformed boundary line");
                if (rest.size() == 1 && rest[0] != '-' && rest[0] != '\r' && rest[0] != ' ' &&
                    rest[0] != '\t')
                    return fail("malformed boundary line");
                break;
            }
            if (rest.substr(i, 2) != "\r\n")
                return fail("malformed boundary line");
            pos += i + 2;
            state_ = state::headers;
        }
        else if (state_ == state::headers)
        {
            std::size_t end;
            std::size_t skip;
            if (rest.substr(0, std::min<std::size_t>(2, rest.size())) == "\r\n")
            {
                end = 0; // no header lines at all
                skip = 2;
            }
            else
            {
                end = rest.find("\r\n\r\n");
                skip = 4;
                if (end == std::string_view::npos)
                {
                    if (rest.size() > max_header_bytes)
                        return fail("part headers too large");
                    break;
                }
            }
            if (end > max_header_bytes)
                return fail("part headers too large");
            if (!parse_headers(rest.substr(0, end)))
                return false;
            pos += end + skip;
            // The part's data starts here; the next delimiter ends it.
            state_ = state::body;
        }
        else
            break;
    }
    pending_.erase(0, pos);
    return true;
}

} // namespace chatstream::streaming
