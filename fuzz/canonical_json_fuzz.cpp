// libFuzzer target: canonical_json is idempotent and never accepts what it
// cannot re-parse.
#include "chatstream/core/json.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using chatstream::core::canonical_json;
    std::string_view const s(reinterpret_cast<char const*>(data), size);
    auto once = canonical_json(s);
    if (!once) return 0;
    auto twice = canonical_json(*once);
    if (!twice || *twice != *once) std::abort();
    return 0;
}
