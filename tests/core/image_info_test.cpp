#include "chatstream/core/image_info.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace chatstream::core;

namespace
{

std::string be32(std::uint32_t v)
{
    return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}
std::string le16(std::uint32_t v)
{
    return {char(v), char(v >> 8)};
}
std::string le24(std::uint32_t v)
{
    return {char(v), char(v >> 8), char(v >> 16)};
}

std::string png(std::uint32_t w, std::uint32_t h)
{
    return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(w) + be32(h) +
           std::string("\x08\x06\x00\x00\x00", 5);
}

std::string jpeg(std::uint32_t w, std::uint32_t h, std::size_t app_bytes = 16)
{
    std::string s("\xFF\xD8", 2);
    // APP0 of app_bytes payload, a fill byte, then SOF2 (progressive).
    s += std::string("\xFF\xE0", 2) + char((app_bytes + 2) >> 8) + char((app_bytes + 2) & 0xff) +
         std::string(app_bytes, 'x');
    s += std::string("\xFF\xFF\xC2\x00\x11\x08", 6) + char(h >> 8) + char(h) + char(w >> 8) +
         char(w) + std::string(12, '\0');
    return s;
}

} // namespace

TEST_CASE("PNG dimensions come from IHDR", "[core][image]")
{
    auto const info = read_image_header(png(640, 480));
    REQUIRE(info);
    CHECK(info->format == image_format::png);
    CHECK(info->width == 640);
    CHECK(info->height == 480);
    CHECK(mime_of(info->format) == "image/png");
    CHECK_FALSE(read_image_header(png(640, 480).substr(0, 20))); // truncated
    CHECK_FALSE(read_image_header(png(0, 480)));
}

TEST_CASE("JPEG dimensions come from the first SOF, past APP segments", "[core][image]")
{
    auto const info = read_image_header(jpeg(1920, 1080, 3000));
    REQUIRE(info);
    CHECK(info->format == image_format::jpeg);
    CHECK(info->width == 1920);
    CHECK(info->height == 1080);
    // The SOF lies beyond the bytes we have: unknown, never a wrong answer.
    CHECK_FALSE(read_image_header(jpeg(1920, 1080, 3000).substr(0, 1000)));
    CHECK(sniff_image(jpeg(1, 1)) == image_format::jpeg);
    // DHT (C4) is not a frame header.
    std::string dht("\xFF\xD8\xFF\xC4\x00\x04\x00\x00\xFF\xC0\x00\x11\x08\x00\x02\x00\x03", 17);
    auto const d = read_image_header(dht + std::string(12, '\0'));
    REQUIRE(d);
    CHECK(d->width == 3);
    CHECK(d->height == 2);
}

TEST_CASE("GIF dimensions come from the logical screen", "[core][image]")
{
    auto const info = read_image_header("GIF89a" + le16(320) + le16(200) + std::string(3, '\0'));
    REQUIRE(info);
    CHECK(info->format == image_format::gif);
    CHECK(info->width == 320);
    CHECK(info->height == 200);
    CHECK_FALSE(read_image_header("GIF89a\x01"));
}

TEST_CASE("WebP dimensions: lossy, lossless and extended", "[core][image]")
{
    auto riff = [](std::string const& chunk, std::string const& payload)
    { return "RIFF" + std::string(4, '\0') + "WEBP" + chunk + std::string(4, '\0') + payload; };

    // VP8: frame tag (3), start code, 14-bit width and height.
    auto lossy = riff("VP8 ", std::string(3, '\0') + "\x9d\x01\x2a" + le16(800) + le16(600));
    auto a = read_image_header(lossy);
    REQUIRE(a);
    CHECK(a->format == image_format::webp);
    CHECK(a->width == 800);
    CHECK(a->height == 600);

    // VP8L: 0x2f, then width-1 (14 bits) and height-1 (14 bits).
    std::uint32_t const bits = (100 - 1) | ((50 - 1) << 14);
    std::string lossless_payload = "\x2f";
    lossless_payload += {char(bits), char(bits >> 8), char(bits >> 16), char(bits >> 24)};
    auto b = read_image_header(riff("VP8L", lossless_payload));
    REQUIRE(b);
    CHECK(b->width == 100);
    CHECK(b->height == 50);

    // VP8X: flags (4), canvas width-1 and height-1 (24 bits each).
    auto c = read_image_header(riff("VP8X", std::string(4, '\0') + le24(4999) + le24(2999)));
    REQUIRE(c);
    CHECK(c->width == 5000);
    CHECK(c->height == 3000);

    CHECK_FALSE(read_image_header(riff("VP8 ", "short")));
}

TEST_CASE("non-images and garbage are not images", "[core][image]")
{
    CHECK(sniff_image("%PDF-1.7") == image_format::none);
    CHECK_FALSE(read_image_header(""));
    CHECK_FALSE(read_image_header("hello world, this is text"));
    CHECK_FALSE(read_image_header(std::string("\xFF\xD8\xFF", 3)));
    CHECK_FALSE(read_image_header(std::string("\xFF\xD8\xFF\xE0\x00\x01", 6))); // length < 2
}
