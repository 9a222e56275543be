#include "chatstream/core/utf16.hpp"

namespace chatstream::core
{
namespace
{

// Length of the sequence introduced by lead byte @p b, 1 for stray bytes.
constexpr std::size_t sequence_length(unsigned char b) noexcept
{
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 3;
    if ((b & 0xF8) == 0xF0)
        return 4;
    return 1;
}

} // namespace

std::size_t utf16_length(std::string_view utf8) noexcept
{
    std::size_t units = 0;
    std::size_t i = 0;
    auto const* p = reinterpret_cast<unsigned char const*>(utf8.data());
    auto const n = utf8.size();
    while (i < n)
    {
        // Fast path: ASCII runs dominate chat text.
        if (p[i] < 0x80)
        {
            ++units;
            ++i;
            continue;
        }
        auto len = sequence_length(p[i]);
        if (i + len > n)
            len = n - i; // truncated tail: count each byte
        units += (len == 4) ? 2 : 1;
        i += len;
    }
    return units;
}

std::size_t utf8_offset_of_utf16(std::string_view utf8, std::size_t u16) noexcept
{
    std::size_t units = 0;
    std::size_t i = 0;
    auto const* p = reinterpret_cast<unsigned char const*>(utf8.data());
    auto const n = utf8.size();
    while (i < n && units < u16)
    {
        auto len = sequence_length(p[i]);
        if (i + len > n)
            len = n - i;
        auto const w = (len == 4) ? 2u : 1u;
        if (units + w > u16)
            break; // inside a surrogate pair: round down
        units += w;
        i += len;
    }
    return i;
}

std::size_t complete_utf8_prefix(std::string_view bytes) noexcept
{
    auto const n = bytes.size();
    auto const* p = reinterpret_cast<unsigned char const*>(bytes.data());
    // Walk back over at most 3 continuation bytes to the last lead byte.
    std::size_t back = 0;
    while (back < 4 && back < n && (p[n - 1 - back] & 0xC0) == 0x80)
        ++back;
    if (back == n)
        return n; // only continuation bytes: nothing to wait for
    auto const lead = p[n - 1 - back];
    auto const need = sequence_length(lead);
    if (need > 1 && back + 1 < need)
        return n - 1 - back; // incomplete: cut before lead
    return n;
}

bool is_valid_utf8(std::string_view bytes) noexcept
{
    auto const* p = reinterpret_cast<unsigned char const*>(bytes.data());
    auto const n = bytes.size();
    std::size_t i = 0;
    while (i < n)
    {
        unsigned char const c = p[i];
        if (c < 0x80)
        {
            ++i;
            continue;
        }
        std::size_t len;
        char32_t cp;
        if ((c & 0xE0) == 0xC0)
        {
            len = 2;
            cp = c & 0x1F;
        }
        else if ((c & 0xF0) == 0xE0)
        {
            len = 3;
            cp = c & 0x0F;
        }
        else if ((c & 0xF8) == 0xF0)
        {
            len = 4;
            cp = c & 0x07;
        }
        else
            return false;
        if (i + len > n)
            return false;
        for (std::size_t k = 1; k < len; ++k)
        {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false; // overlong
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

} // namespace chatstream::core
