#include "chatstream/core/file_name.hpp"

namespace chatstream::core
{
namespace
{

/// Decodes the UTF-8 sequence at @p s[i]: its length and code point, or a
/// length of 0 when it is malformed (overlong, surrogate, truncated, > U+10FFFF).
std::size_t decode(std::string_view s, std::size_t i, char32_t& cp)
{
    auto const b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    auto const cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
    unsigned char const c = b(0);
    if (c < 0x80)
    {
        cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF && cont(1))
    {
        cp = (char32_t(c & 0x1F) << 6) | (b(1) & 0x3F);
        return 2;
    }
    if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2))
    {
        cp = (char32_t(c & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3))
    {
        cp = (char32_t(c & 0x07) << 18) | (char32_t(b(1) & 0x3F) << 12) |
             (char32_t(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
        if (cp < 0x10000 || cp > 0x10FFFF)
            return 0;
        return 4;
    }
    return 0;
}

bool dropped(char32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) ||    // C0, DEL, C1
           (cp >= 0x202A && cp <= 0x202E) ||             // bidi embeddings and overrides
           (cp >= 0x2066 && cp <= 0x2069) ||             // bidi isolates
           cp == 0x200E || cp == 0x200F || cp == 0xFEFF; // LRM, RLM, BOM
}

std::string sanitize(std::string_view name)
{
    // Directory components go first, so "a/../b" and "..\\x" keep only the
    // last name whatever the client's platform.
    if (auto const slash = name.find_last_of("/\\"); slash != std::string_view::npos)
        name.remove_prefix(slash + 1);
    std::string out;
    for (std::size_t i = 0; i < name.size();)
    {
        char32_t cp = 0;
        auto const n = decode(name, i, cp);
        if (n == 0)
        {
            ++i; // not UTF-8: dropped
            continue;
        }
        // Leading dots and spaces: no hidden files, no "." or "..".
        bool const leading = out.empty() && (cp == '.' || cp == ' ');
        if (!leading && !dropped(cp))
        {
            if (out.size() + n > max_file_name_bytes)
                break; // cut at a character boundary
            out.append(name.substr(i, n));
        }
        i += n;
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

} // namespace

std::string sanitize_file_name(std::string_view name, std::string_view fallback)
{
    auto out = sanitize(name);
    if (out.empty())
        out = sanitize(fallback);
    return out.empty() ? std::string("file") : out;
}

std::string attachment_type(std::string_view mime_type)
{
    if (mime_type.starts_with("image/"))
        return "image";
    if (mime_type.starts_with("audio/"))
        return "audio";
    return "file";
}

} // namespace chatstream::core
