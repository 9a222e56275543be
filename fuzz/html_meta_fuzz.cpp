// libFuzzer target: scan_html_meta on arbitrary bytes as an HTML prefix.
// The first byte picks the page URL. Properties: texts are valid UTF-8
// within max_meta_text, trimmed, without control characters or double
// spaces; URLs are http(s) within max_meta_url, printable ASCII. A prefix of
// the input (a body cut at a place the input picks) holds the same.
#include "chatstream/streaming/page_fetcher.hpp"

#include "chatstream/core/utf16.hpp"

#include <array>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace
{

using namespace chatstream::streaming;

constexpr std::array<std::string_view, 4> page_urls{
    "https://example.com/blog/post.html?x=1",
    "http://127.0.0.1:8080/",
    "https://[2001:db8::1]/a/b/",
    "not a url",
};

void check_text(std::optional<std::string> const& t)
{
    if (!t)
        return;
    std::string_view const s = *t;
    if (s.empty() || s.size() > max_meta_text || !chatstream::core::is_valid_utf8(s) ||
        s.front() == ' ' || s.back() == ' ' || s.find("  ") != std::string_view::npos)
        std::abort();
    for (char c : s)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
            std::abort();
}

void check_url(std::optional<std::string> const& u)
{
    if (!u)
        return;
    if (u->size() > max_meta_url || !(u->starts_with("http://") || u->starts_with("https://")))
        std::abort();
    for (char c : *u)
        if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f)
            std::abort();
}

void check(page_metadata const& m)
{
    check_text(m.title);
    check_text(m.description);
    check_url(m.image);
    check_url(m.favicon);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    if (size == 0)
        return 0;
    auto const page = page_urls[data[0] % page_urls.size()];
    std::string_view const html(reinterpret_cast<char const*>(data + 1), size - 1);
    check(scan_html_meta(html, page));
    // A cut at a place derived from the input, as a capped body would be.
    if (!html.empty())
        check(scan_html_meta(html.substr(0, data[0] * 7 % html.size()), page));
    return 0;
}
