// libFuzzer target: the image header reader takes untrusted upload bytes; it
// must never read out of bounds, and must agree with the sniffer.
#include "chatstream/core/image_info.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using namespace chatstream::core;
    std::string_view const s(reinterpret_cast<char const*>(data), size);
    auto const info = read_image_header(s);
    if (info)
    {
        if (info->format != sniff_image(s) || info->format == image_format::none)
            std::abort();
        if (mime_of(info->format).empty())
            std::abort();
        // A prefix never yields a different answer, only none.
        if (auto p = read_image_header(s.substr(0, size / 2)))
            if (p->width != info->width || p->height != info->height)
                std::abort();
    }
    return 0;
}
