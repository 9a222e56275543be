#include "chatstream/core/image_info.hpp"

namespace chatstream::core
{
namespace
{

std::uint32_t be16(std::string_view s, std::size_t i)
{
    return (std::uint32_t(std::uint8_t(s[i])) << 8) | std::uint8_t(s[i + 1]);
}
std::uint32_t be32(std::string_view s, std::size_t i)
{
    return (be16(s, i) << 16) | be16(s, i + 2);
}
std::uint32_t le16(std::string_view s, std::size_t i)
{
    return std::uint8_t(s[i]) | (std::uint32_t(std::uint8_t(s[i + 1])) << 8);
}
std::uint32_t le24(std::string_view s, std::size_t i)
{
    return le16(s, i) | (std::uint32_t(std::uint8_t(s[i + 2])) << 16);
}

std::optional<image_info> png(std::string_view s)
{
    // Signature, then the IHDR chunk must come first: length, "IHDR", width, height.
    if (s.size() < 24 || s.substr(12, 4) != "IHDR")
        return std::nullopt;
    auto const w = be32(s, 16);
    auto const h = be32(s, 20);
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return std::nullopt;
    return image_info{image_format::png, w, h};
}

std::optional<image_info> gif(std::string_view s)
{
    if (s.size() < 10)
        return std::nullopt;
    return image_info{image_format::gif, le16(s, 6), le16(s, 8)};
}

std::optional<image_info> jpeg(std::string_view s)
{
    // Walk the marker segments up to the first start-of-frame.
    std::size_t i = 2;
    while (i < s.size())
    {
        if (std::uint8_t(s[i]) != 0xFF)
            return std::nullopt;
        // Fill bytes: any number of 0xFF before a marker.
        while (i < s.size() && std::uint8_t(s[i]) == 0xFF)
            ++i;
        if (i >= s.size())
            return std::nullopt;
        auto const marker = std::uint8_t(s[i++]);
        // Standalone markers carry no length.
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7))
            continue;
        if (marker == 0xD9 || marker == 0xDA)
            return std::nullopt; // EOI / SOS before any SOF
        if (i + 2 > s.size())
            return std::nullopt;
        auto const length = be16(s, i);
        if (length < 2)
            return std::nullopt;
        bool const sof =
            marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
        if (sof)
        {
            // length(2) precision(1) height(2) width(2)
            if (length < 7 || i + 7 > s.size())
                return std::nullopt;
            auto const h = be16(s, i + 3);
            auto const w = be16(s, i + 5);
            if (w == 0)
                return std::nullopt; // h == 0 is legal (DNL), w is not
            return image_info{image_format::jpeg, w, h};
        }
        i += length;
    }
    return std::nullopt;
}

std::optional<image_info> webp(std::string_view s)
{
    if (s.size() < 16)
        return std::nullopt;
    auto const chunk = s.substr(12, 4);
    if (chunk == "VP8 ")
    {
        // Frame tag (3 bytes) at 20, start code 9d 01 2a, then 14-bit sizes.
        if (s.size() < 30 || s.substr(23, 3) != "\x9d\x01\x2a")
            return std::nullopt;
        return image_info{image_format::webp, le16(s, 26) & 0x3fff, le16(s, 28) & 0x3fff};
    }
    if (chunk == "VP8L")
    {
        // Signature 0x2f, then width-1 and height-1 in 14 bits each, LSB first.
        if (s.size() < 25 || std::uint8_t(s[20]) != 0x2f)
            return std::nullopt;
        std::uint32_t const bits = std::uint8_t(s[21]) | (std::uint32_t(std::uint8_t(s[22])) << 8) |
                                   (std::uint32_t(std::uint8_t(s[23])) << 16) |
                                   (std::uint32_t(std::uint8_t(s[24])) << 24);
        return image_info{image_format::webp, (bits & 0x3fff) + 1, ((bits >> 14) & 0x3fff) + 1};
    }
    if (chunk == "VP8X")
    {
        // Flags (4 bytes) at 20, then canvas width-1 and height-1, 24 bits each.
        if (s.size() < 30)
            return std::nullopt;
        return image_info{image_format::webp, le24(s, 24) + 1, le24(s, 27) + 1};
    }
    return std::nullopt;
}

} // namespace

image_format sniff_image(std::string_view s) noexcept
{
    if (s.size() >= 8 && s.substr(0, 8) == "\x89PNG\r\n\x1a\n")
        return image_format::png;
    if (s.size() >= 3 && s.substr(0, 3) == "\xFF\xD8\xFF")
        return image_format::jpeg;
    if (s.size() >= 6 && (s.substr(0, 6) == "GIF87a" || s.substr(0, 6) == "GIF89a"))
        return image_format::gif;
    if (s.size() >= 12 && s.substr(0, 4) == "RIFF" && s.substr(8, 4) == "WEBP")
        return image_format::webp;
    return image_format::none;
}

std::optional<image_info> read_image_header(std::string_view s) noexcept
{
    switch (sniff_image(s))
    {
    case image_format::png:
        return png(s);
    case image_format::jpeg:
        return jpeg(s);
    case image_format::gif:
        return gif(s);
    case image_format::webp:
        return webp(s);
    case image_format::none:
        break;
    }
    return std::nullopt;
}

std::string_view mime_of(image_format f) noexcept
{
    switch (f)
    {
    case image_format::png:
        return "image/png";
    case image_format::jpeg:
        return "image/jpeg";
    case image_format::gif:
        return "image/gif";
    case image_format::webp:
        return "image/webp";
    case image_format::none:
        break;
    }
    return {};
}

} // namespace chatstream::core
