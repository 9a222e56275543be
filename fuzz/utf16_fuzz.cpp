// libFuzzer target: the UTF-16 offset utilities on arbitrary bytes.
// Independent oracle: glibc's iconv decodes the input one code point at a
// time (UTF-8 -> UTF-32), which gives every code point's byte boundary and
// its width in UTF-16 units. On the longest prefix iconv accepts:
//  - utf16_length counts what iconv counts (astral = 2 units);
//  - utf8_offset_of_utf16 lands on iconv's boundaries, and an offset inside
//    a surrogate pair rounds down to the pair's start;
//  - is_valid_utf8 agrees with iconv on the whole input (glibc refuses
//    overlongs, surrogates, > U+10FFFF and truncated sequences, as we do).
// Everywhere: offsets stay in bounds and grow with u16, and a valid string
// cut at complete_utf8_prefix stays valid.
#include "chatstream/core/utf16.hpp"

#include <iconv.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

namespace
{

void require(bool ok)
{
    if (!ok)
        std::abort();
}

struct decoded
{
    std::vector<std::size_t>
        byte_at; ///< byte offset of each code point, then the end of the valid prefix
    std::vector<std::size_t> units_at; ///< UTF-16 offset of each entry of byte_at
    bool whole = false;                ///< iconv accepted every byte
};

decoded decode_with_iconv(std::string_view s)
{
    static iconv_t const cd = iconv_open("UTF-32LE", "UTF-8");
    require(cd != reinterpret_cast<iconv_t>(-1));
    iconv(cd, nullptr, nullptr, nullptr, nullptr);
    decoded d;
    std::size_t units = 0;
    auto* in = const_cast<char*>(s.data());
    std::size_t in_left = s.size();
    for (;;)
    {
        d.byte_at.push_back(s.size() - in_left);
        d.units_at.push_back(units);
        if (in_left == 0)
        {
            d.whole = true;
            return d;
        }
        // An output buffer of one UTF-32 unit: iconv converts exactly one
        // code point per call (E2BIG once it is full).
        std::uint32_t cp = 0;
        auto* out = reinterpret_cast<char*>(&cp);
        std::size_t out_left = sizeof cp;
        auto const before = in_left;
        iconv(cd, &in, &in_left, &out, &out_left);
        if (out_left != 0 || in_left == before)
            return d; // EILSEQ / EINVAL: invalid from here
        units += cp > 0xFFFF ? 2 : 1;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using namespace chatstream::core;
    std::string_view const s(reinterpret_cast<char const*>(data), size);
    auto const units = utf16_length(s);

    auto const oracle = decode_with_iconv(s);
    require(is_valid_utf8(s) == oracle.whole);
    auto const valid_end = oracle.byte_at.back();
    require(utf16_length(s.substr(0, valid_end)) == oracle.units_at.back());
    for (std::size_t i = 0; i < oracle.byte_at.size(); ++i)
    {
        auto const u = oracle.units_at[i];
        require(utf8_offset_of_utf16(s, u) == oracle.byte_at[i]);
        if (i + 1 < oracle.byte_at.size() && oracle.units_at[i + 1] == u + 2)
            require(utf8_offset_of_utf16(s, u + 1) == oracle.byte_at[i]); // inside a pair
    }
    if (!oracle.whole)
        require(units > oracle.units_at.back()); // the invalid rest counts too

    // Mapping the full length lands at the end; every offset maps inside.
    require(utf8_offset_of_utf16(s, units) == s.size());
    require(utf8_offset_of_utf16(s, units + 1) == s.size());
    std::size_t prev = 0;
    for (std::size_t u = 0; u <= units; ++u)
    {
        auto const b = utf8_offset_of_utf16(s, u);
        require(b <= s.size() && b >= prev);
        prev = b;
    }
    auto const cut = complete_utf8_prefix(s);
    require(cut <= s.size());
    if (oracle.whole)
        require(cut == s.size() && is_valid_utf8(s.substr(0, cut)));
    return 0;
}
