#pragma once
/// @file image_info.hpp
/// Image format and dimensions from the first bytes of a file, without
/// decoding it (PNG, JPEG, GIF, WebP). Pure functions over untrusted bytes:
/// they never read outside @p head and never allocate.
#include <cstdint>
#include <optional>
#include <string_view>

namespace chatstream::core
{

enum class image_format
{
    none,
    png,
    jpeg,
    gif,
    webp
};

struct image_info
{
    image_format format = image_format::none;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
};

/// The format announced by the magic bytes of @p head (none when unknown).
image_format sniff_image(std::string_view head) noexcept;

/// Format and dimensions read from the header of @p head: PNG IHDR, the
/// first JPEG SOFn segment, the GIF logical screen, WebP VP8/VP8L/VP8X.
/// std::nullopt when @p head is not one of those or is too short to tell
/// (a JPEG whose SOF lies beyond @p head, e.g. after a huge EXIF block).
std::optional<image_info> read_image_header(std::string_view head) noexcept;

/// The MIME type of @p f ("image/png", ...); empty for none.
std::string_view mime_of(image_format f) noexcept;

} // namespace chatstream::core
