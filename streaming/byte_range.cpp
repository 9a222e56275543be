// Byte ranges of a file download (RFC 9110 §14).
#include "chatstream/streaming/byte_range.hpp"

#include <algorithm>
#include <charconv>

namespace chatstream::streaming
{

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` against a file of @p size bytes.
range_result parse_range(std::string_view header, std::uint64_t size)
{
    range_result r;
    constexpr std::string_view unit = "bytes=";
    if (!header.starts_with(unit))
        return r; // other units: ignored (RFC 9110 §14.2)
    auto spec = header.substr(unit.size());
    if (spec.find(',') != std::string_view::npos)
        return r; // several ranges: the whole file is a valid answer
    auto const dash = spec.find('-');
    if (dash == std::string_view::npos)
        return r;
    auto number = [](std::string_view s, std::uint64_t& out)
    {
        if (s.empty())
            return false;
        auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && p == s.data() + s.size();
    };
    auto const a = spec.substr(0, dash);
    auto const b = spec.substr(dash + 1);
    std::uint64_t first = 0, last = 0;
    if (a.empty())
    {
        if (!number(b, last))
            return r;
        if (last == 0 || size == 0)
            return {range_result::kind::unsatisfiable};
        first = size > last ? size - last : 0;
        return {range_result::kind::partial, first, size - 1};
    }
    if (!number(a, first))
        return r;
    if (b.empty())
        last = size ? size - 1 : 0;
    else if (!number(b, last) || last < first)
        return r;
    if (first >= size)
        return {range_result::kind::unsatisfiable};
    return {range_result::kind::partial, first, std::min(last, size - 1)};
}

} // namespace chatstream::streaming
