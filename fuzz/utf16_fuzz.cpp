// libFuzzer target: the UTF-16 offset utilities must agree with each other on
// arbitrary bytes and never read out of bounds.
#include "chatstream/core/utf16.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using namespace chatstream::core;
    std::string_view const s(reinterpret_cast<char const*>(data), size);
    auto const units = utf16_length(s);
    // Mapping the full length lands at the end; every offset maps inside.
    if (utf8_offset_of_utf16(s, units) != s.size()) std::abort();
    std::size_t prev = 0;
    for (std::size_t u = 0; u <= units; ++u)
    {
        auto const b = utf8_offset_of_utf16(s, u);
        if (b > s.size() || b < prev) std::abort();
        // Round trip: the prefix up to b is at most u units long.
        if (utf16_length(s.substr(0, b)) > u) std::abort();
        prev = b;
    }
    auto const cut = complete_utf8_prefix(s);
    if (cut > s.size()) std::abort();
    // A valid string cut at complete_utf8_prefix stays valid.
    if (is_valid_utf8(s) && !is_valid_utf8(s.substr(0, cut))) std::abort();
    return 0;
}
