// scan_html_meta: the few head tags a link preview needs, from an HTML
// prefix that may be cut anywhere.
//
// Hand-written on purpose. Debian 12 has no lexbor or myhtml package;
// libgumbo-dev (0.10.1, upstream archived since 2016) and libxml2's HTML
// parser build a whole document tree, which is more code, memory and attack
// surface than six tags in the <head> need, and libxml2's HTML4-era error
// recovery differs from a browser's anyway. A tokenizer this small reads a
// body cut at max_body without a special case, allocates only for its
// results, is linear in its input, and is easy to fuzz (fuzz/html_meta_fuzz.cpp).
// It follows the HTML tokenizer where it matters here: attribute syntax
// (quoted, unquoted, valueless, any order and case), comments, and raw-text
// elements (<script>, <style>, <svg>, ...) whose content is never scanned.
#include "chatstream/streaming/page_fetcher.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>

#include <array>
#include <cstdint>

namespace chatstream::streaming
{
namespace
{

constexpr auto npos = std::string_view::npos;
// An attribute without a value: empty, but not null (null means absent).
constexpr std::string_view valueless{""};

char lower(char c) noexcept
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_space(char c) noexcept
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

bool is_alpha(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/// ASCII case-insensitive equality; @p lowered is already lower case.
bool iequals(std::string_view s, std::string_view lowered) noexcept
{
    if (s.size() != lowered.size())
        return false;
    for (std::size_t i = 0; i < s.size(); ++i)
        if (lower(s[i]) != lowered[i])
            return false;
    return true;
}

bool has_text(std::string_view s) noexcept
{
    for (char c : s)
        if (!is_space(c))
            return true;
    return false;
}

/// Where `</name` (followed by a delimiter or the end) starts at or after
/// @p from, or npos.
std::size_t find_end_tag(std::string_view html, std::string_view name, std::size_t from) noexcept
{
    for (auto at = html.find("</", from); at != npos; at = html.find("</", at + 2))
    {
        auto const after = at + 2 + name.size();
        if (after > html.size())
            return npos;
        if (!iequals(html.substr(at + 2, name.size()), name))
            continue;
        if (after == html.size() || is_space(html[after]) || html[after] == '>' ||
            html[after] == '/')
            return at;
    }
    return npos;
}

enum class tag_kind
{
    other,
    meta,
    link,
    base,
    title,
    raw_text, // content is not markup: skipped to the matching end tag
};

tag_kind classify(std::string_view name) noexcept
{
    if (iequals(name, "meta"))
        return tag_kind::meta;
    if (iequals(name, "link"))
        return tag_kind::link;
    if (iequals(name, "base"))
        return tag_kind::base;
    if (iequals(name, "title"))
        return tag_kind::title;
    // <svg> and <math> have <title> children of their own.
    for (std::string_view raw : {"script", "style", "textarea", "xmp", "iframe", "noembed",
                                 "noframes", "template", "svg", "math"})
        if (iequals(name, raw))
            return tag_kind::raw_text;
    return tag_kind::other;
}

struct tag_end
{
    std::size_t next = npos; // after the '>', npos: the input ended inside the tag
    bool self_closing = false;
};

/// Reads the attributes of a start tag from @p pos (just after its name) to
/// its '>', calling @p on_attribute(name, raw value) for each.
template <class F>
tag_end parse_attributes(std::string_view html, std::size_t pos, F&& on_attribute)
{
    auto const n = html.size();
    bool slash = false;
    while (pos < n)
    {
        char const c = html[pos];
        if (is_space(c) || c == '/')
        {
            slash = c == '/';
            ++pos;
            continue;
        }
        if (c == '>')
            return {pos + 1, slash};
        slash = false;
        // A name runs to a delimiter; a leading '=' belongs to it (tokenizer rule).
        auto const name_begin = pos++;
        while (pos < n && !is_space(html[pos]) && html[pos] != '/' && html[pos] != '>' &&
               html[pos] != '=')
            ++pos;
        auto const name = html.substr(name_begin, pos - name_begin);
        auto after_name = pos;
        while (after_name < n && is_space(html[after_name]))
            ++after_name;
        if (after_name >= n)
            return {};
        if (html[after_name] != '=')
        {
            on_attribute(name, std::string_view{});
            pos = after_name;
            continue;
        }
        pos = after_name + 1;
        while (pos < n && is_space(html[pos]))
            ++pos;
        if (pos >= n)
            return {};
        if (html[pos] == '"' || html[pos] == '\'')
        {
            auto const close = html.find(html[pos], pos + 1);
            if (close == npos)
                return {};
            on_attribute(name, html.substr(pos + 1, close - pos - 1));
            pos = close + 1;
            continue;
        }
        auto const value_begin = pos;
        while (pos < n && !is_space(html[pos]) && html[pos] != '>')
            ++pos;
        if (pos >= n)
            return {}; // the value may go on past the cut
        on_attribute(name, html.substr(value_begin, pos - value_begin));
    }
    return {};
}

// The raw (undecoded) candidates, first non-blank one of each kind.
struct candidates
{
    std::string_view og_title, twitter_title, title;
    std::string_view og_description, twitter_description, description;
    std::string_view og_image, twitter_image;
    std::string_view icon, touch_icon;
    std::string_view base;
};

void keep_first(std::string_view& slot, std::string_view value) noexcept
{
    if (slot.data() == nullptr && has_text(value))
        slot = value;
}

void on_meta(candidates& c, std::string_view key, std::string_view content) noexcept
{
    if (iequals(key, "og:title"))
        keep_first(c.og_title, content);
    else if (iequals(key, "og:description"))
        keep_first(c.og_description, content);
    else if (iequals(key, "og:image") || iequals(key, "og:image:url") ||
             iequals(key, "og:image:secure_url"))
        keep_first(c.og_image, content);
    else if (iequals(key, "twitter:title"))
        keep_first(c.twitter_title, content);
    else if (iequals(key, "twitter:description"))
        keep_first(c.twitter_description, content);
    else if (iequals(key, "twitter:image") || iequals(key, "twitter:image:src"))
        keep_first(c.twitter_image, content);
    else if (iequals(key, "description"))
        keep_first(c.description, content);
}

void on_link(candidates& c, std::string_view rel, std::string_view href) noexcept
{
    // rel is a space-separated token list: "icon", "shortcut icon", ...
    std::size_t at = 0;
    while (at < rel.size())
    {
        while (at < rel.size() && is_space(rel[at]))
            ++at;
        auto end = at;
        while (end < rel.size() && !is_space(rel[end]))
            ++end;
        auto const token = rel.substr(at, end - at);
        if (iequals(token, "icon"))
            keep_first(c.icon, href);
        else if (iequals(token, "apple-touch-icon") ||
                 iequals(token, "apple-touch-icon-precomposed"))
            keep_first(c.touch_icon, href);
        at = end;
    }
}

candidates scan(std::string_view html)
{
    candidates c;
    std::size_t pos = 0;
    auto const n = html.size();
    while (pos < n)
    {
        auto const lt = html.find('<', pos);
        if (lt == npos || lt + 1 >= n)
            break;
        pos = lt + 1;
        char const first = html[pos];
        if (first == '!' && html.substr(pos, 3) == "!--")
        {
            auto const end = html.find("-->", pos + 3);
            if (end == npos)
                break;
            pos = end + 3;
            continue;
        }
        if (first == '!' || first == '?' || first == '/')
        {
            // Doctype, processing instruction, end tag: nothing to read.
            auto const end = html.find('>', pos);
            if (end == npos)
                break;
            pos = end + 1;
            continue;
        }
        if (!is_alpha(first))
            continue; // a '<' in text
        auto name_end = pos;
        while (name_end < n && !is_space(html[name_end]) && html[name_end] != '/' &&
               html[name_end] != '>')
            ++name_end;
        auto const name = html.substr(pos, name_end - pos);
        auto const kind = classify(name);

        std::string_view property, meta_name, content, rel, href;
        auto const end =
            parse_attributes(html, name_end,
                             [&](std::string_view attribute, std::string_view value)
                             {
                                 // The first of a repeated attribute wins (tokenizer
                                 // rule).
                                 auto const set = [&](std::string_view& slot)
                                 {
                                     if (slot.data() == nullptr)
                                         slot = value.data() == nullptr ? valueless : value;
                                 };
                                 if (iequals(attribute, "property"))
                                     set(property);
                                 else if (iequals(attribute, "name"))
                                     set(meta_name);
                                 else if (iequals(attribute, "content"))
                                     set(content);
                                 else if (iequals(attribute, "rel"))
                                     set(rel);
                                 else if (iequals(attribute, "href"))
                                     set(href);
                             });
        if (end.next == npos)
            break; // cut inside the tag: what it would have said is unknown
        pos = end.next;

        switch (kind)
        {
        case tag_kind::meta:
            on_meta(c, property, content);
            on_meta(c, meta_name, content);
            break;
        case tag_kind::link:
            on_link(c, rel, href);
            break;
        case tag_kind::base:
            keep_first(c.base, href);
            break;
        case tag_kind::title:
        {
            auto const close = find_end_tag(html, "title", pos);
            if (close == npos)
                return c; // the title may go on past the cut
            keep_first(c.title, html.substr(pos, close - pos));
            pos = close;
            break;
        }
        case tag_kind::raw_text:
        {
            if (end.self_closing && (iequals(name, "svg") || iequals(name, "math")))
                break; // <svg/> in foreign content really is empty
            auto const close = find_end_tag(html, name, pos);
            if (close == npos)
                return c;
            pos = close;
            break;
        }
        case tag_kind::other:
            break;
        }
    }
    return c;
}

//------------------------------------------------------------------------------
// Character references and UTF-8.

constexpr char32_t replacement = 0xFFFD;

struct named_entity
{
    std::string_view name;
    char32_t code_point;
};

// The ones pages put in titles; the full HTML table (2,231 names) is not
// worth its size here. Unknown names stay as written.
constexpr std::array<named_entity, 20> named_entities{{
    {"amp", '&'},      {"lt", '<'},        {"gt", '>'},       {"quot", '"'},     {"apos", '\''},
    {"nbsp", 0xA0},    {"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013}, {"lsquo", 0x2018},
    {"rsquo", 0x2019}, {"ldquo", 0x201C},  {"rdquo", 0x201D}, {"laquo", 0xAB},   {"raquo", 0xBB},
    {"copy", 0xA9},    {"reg", 0xAE},      {"trade", 0x2122}, {"middot", 0xB7},  {"bull", 0x2022},
}};

/// Decodes the character reference at @p s[at] == '&'; on success sets
/// @p cp and returns its length, else returns 0 (the '&' is literal).
std::size_t character_reference(std::string_view s, std::size_t at, char32_t& cp) noexcept
{
    auto i = at + 1;
    if (i < s.size() && s[i] == '#')
    {
        ++i;
        bool const hex = i < s.size() && (s[i] == 'x' || s[i] == 'X');
        if (hex)
            ++i;
        std::uint32_t value = 0;
        auto const digits_begin = i;
        for (; i < s.size(); ++i)
        {
            char const c = s[i];
            int digit = -1;
            if (c >= '0' && c <= '9')
                digit = c - '0';
            else if (hex && lower(c) >= 'a' && lower(c) <= 'f')
                digit = lower(c) - 'a' + 10;
            if (digit < 0)
                break;
            value = std::min<std::uint32_t>(value * (hex ? 16 : 10) + digit, 0x110000);
        }
        if (i == digits_begin)
            return 0;
        if (i < s.size() && s[i] == ';')
            ++i; // optional for numeric references, as browsers read them
        bool const valid = value != 0 && value < 0x110000 && (value < 0xD800 || value > 0xDFFF);
        cp = valid ? static_cast<char32_t>(value) : replacement;
        return i - at;
    }
    auto const name_begin = i;
    while (i < s.size() && i - name_begin < 8 && (is_alpha(s[i]) || (s[i] >= '0' && s[i] <= '9')))
        ++i;
    if (i >= s.size() || s[i] != ';')
        return 0;
    auto const name = s.substr(name_begin, i - name_begin);
    for (auto const& e : named_entities)
        if (e.name == name)
        {
            cp = e.code_point;
            return i + 1 - at;
        }
    return 0;
}

/// Decodes one UTF-8 sequence at @p s[at]; an invalid one is one byte of
/// U+FFFD (so text in another charset degrades instead of breaking JSON).
std::size_t utf8_sequence(std::string_view s, std::size_t at, char32_t& cp) noexcept
{
    auto const b0 = static_cast<unsigned char>(s[at]);
    if (b0 < 0x80)
    {
        cp = b0;
        return 1;
    }
    std::size_t len = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0)
        len = 2, min = 0x80, cp = b0 & 0x1F;
    else if ((b0 & 0xF0) == 0xE0)
        len = 3, min = 0x800, cp = b0 & 0x0F;
    else if ((b0 & 0xF8) == 0xF0)
        len = 4, min = 0x10000, cp = b0 & 0x07;
    else
    {
        cp = replacement;
        return 1;
    }
    if (at + len > s.size())
    {
        cp = replacement;
        return 1;
    }
    for (std::size_t k = 1; k < len; ++k)
    {
        auto const b = static_cast<unsigned char>(s[at + k]);
        if ((b & 0xC0) != 0x80)
        {
            cp = replacement;
            return 1;
        }
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    {
        cp = replacement;
        return 1;
    }
    return len;
}

/// Calls @p out(code point) for each character of @p raw, references decoded.
template <class F> void for_each_code_point(std::string_view raw, F&& out)
{
    std::size_t i = 0;
    while (i < raw.size())
    {
        char32_t cp = 0;
        std::size_t len = 0;
        if (raw[i] == '&')
            len = character_reference(raw, i, cp);
        if (len == 0)
            len = utf8_sequence(raw, i, cp);
        i += len;
        if (!out(cp))
            return;
    }
}

void append_utf8(std::string& out, char32_t cp)
{
    if (cp < 0x80)
        out += static_cast<char>(cp);
    else if (cp < 0x800)
    {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    else if (cp < 0x10000)
    {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
    else
    {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

std::size_t utf8_length(char32_t cp) noexcept
{
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

bool is_control(char32_t cp) noexcept
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/// Display text: references decoded, runs of whitespace one space, no
/// leading or trailing space, no control characters, at most @p cap bytes.
std::string decode_text(std::string_view raw, std::size_t cap)
{
    std::string out;
    out.reserve(std::min(raw.size(), cap));
    bool pending_space = false;
    for_each_code_point(raw,
                        [&](char32_t cp)
                        {
                            if (cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' ||
                                cp == 0xA0)
                            {
                                pending_space = !out.empty();
                                return true;
                            }
                            if (is_control(cp))
                                return true;
                            auto const need = utf8_length(cp) + (pending_space ? 1 : 0);
                            if (out.size() + need > cap)
                                return false; // capped on a code point boundary
                            if (pending_space)
                                out += ' ';
                            pending_space = false;
                            append_utf8(out, cp);
                            return true;
                        });
    return out;
}

/// An attribute value as a URI reference: references decoded, tabs and
/// newlines removed and outer spaces trimmed (as browsers do), and the bytes
/// a URI cannot hold percent-encoded (spaces, non-ASCII, `"<>\^`{|}`).
std::string uri_reference(std::string_view raw)
{
    std::string decoded;
    for_each_code_point(raw,
                        [&](char32_t cp)
                        {
                            if (cp != '\t' && cp != '\n' && cp != '\r' && !is_control(cp))
                                append_utf8(decoded, cp);
                            return true;
                        });
    auto const first = decoded.find_first_not_of(" \f");
    if (first == std::string::npos)
        return {};
    auto const last = decoded.find_last_not_of(" \f");
    std::string_view const trimmed(decoded.data() + first, last - first + 1);
    constexpr std::string_view hex = "0123456789ABCDEF";
    constexpr std::string_view unsafe = " \"<>\\^`{|}\f";
    std::string out;
    out.reserve(trimmed.size());
    for (char c : trimmed)
    {
        auto const b = static_cast<unsigned char>(c);
        if (b >= 0x80 || unsafe.find(c) != npos)
        {
            out += '%';
            out += hex[b >> 4];
            out += hex[b & 0xF];
        }
        else
            out += c;
    }
    return out;
}

bool is_web_url(boost::urls::url_view_base const& u) noexcept
{
    return (u.scheme_id() == boost::urls::scheme::http ||
            u.scheme_id() == boost::urls::scheme::https) &&
           u.has_authority() && !u.encoded_host().empty();
}

/// @p raw resolved against @p base (may be empty: then only absolute URLs
/// resolve); nullopt unless it is an http(s) URL of at most max_meta_url bytes.
std::optional<std::string> resolve_url(std::string_view raw,
                                       std::optional<boost::urls::url> const& base)
{
    if (raw.size() > 4 * max_meta_url)
        return std::nullopt; // cannot shrink below the cap by decoding
    auto const text = uri_reference(raw);
    if (text.empty())
        return std::nullopt;
    auto const ref = boost::urls::parse_uri_reference(text);
    if (!ref)
        return std::nullopt;
    boost::urls::url resolved;
    if (ref->has_scheme())
        resolved = *ref;
    else if (!base || !boost::urls::resolve(*base, *ref, resolved))
        return std::nullopt;
    if (!is_web_url(resolved))
        return std::nullopt;
    resolved.remove_userinfo();  // never show or fetch credentials from a page
    resolved.normalize_scheme(); // "HTTPS:" is https: too (found by the fuzzer)
    if (resolved.buffer().size() > max_meta_url)
        return std::nullopt; // a cut URL points somewhere else
    return std::string(resolved.buffer());
}

template <class... Views> std::optional<std::string> first_text(Views... raw)
{
    std::optional<std::string> found;
    (
        [&](std::string_view v)
        {
            if (found || v.data() == nullptr)
                return;
            if (auto t = decode_text(v, max_meta_text); !t.empty())
                found = std::move(t);
        }(raw),
        ...);
    return found;
}

template <class... Views>
std::optional<std::string> first_url(std::optional<boost::urls::url> const& base, Views... raw)
{
    std::optional<std::string> found;
    (
        [&](std::string_view v)
        {
            if (!found && v.data() != nullptr)
                found = resolve_url(v, base);
        }(raw),
        ...);
    return found;
}

} // namespace

page_metadata scan_html_meta(std::string_view html, std::string_view page_url)
{
    auto const c = scan(html);

    std::optional<boost::urls::url> page;
    if (auto const parsed = boost::urls::parse_uri(page_url); parsed && is_web_url(*parsed))
        page.emplace(*parsed);
    // <base href> changes how the page's relative URLs resolve, not its origin.
    auto base = page;
    if (page && c.base.data() != nullptr)
        if (auto const b = resolve_url(c.base, page))
            base.emplace(*b);

    page_metadata m;
    m.title = first_text(c.og_title, c.twitter_title, c.title);
    m.description = first_text(c.og_description, c.twitter_description, c.description);
    m.image = first_url(base, c.og_image, c.twitter_image);
    m.favicon = first_url(base, c.icon, c.touch_icon);
    if (!m.favicon)
        m.favicon = first_url(page, std::string_view("/favicon.ico"));
    return m;
}

} // namespace chatstream::streaming
