#include "chatstream/streaming/byte_range.hpp"
#include "chatstream/streaming/multipart.hpp"

#include <catch2/catch.hpp>

#include <vector>

using namespace chatstream::streaming;

namespace
{

struct collected
{
    std::vector<multipart_parser::part> parts;
    std::string data;
};

// Feeds @p body in chunks of @p chunk bytes; keeps only parts with a filename.
collected parse(std::string const& body, std::size_t chunk, bool* ok = nullptr,
                std::string boundary = "XyZ")
{
    collected c;
    multipart_parser p(
        boundary,
        [&](multipart_parser::part const& part)
        {
            c.parts.push_back(part);
            return part.filename.has_value();
        },
        [&](std::string_view d) { c.data.append(d); });
    bool good = true;
    for (std::size_t i = 0; i < body.size() && good; i += chunk)
        good = p.feed(std::string_view(body).substr(i, chunk));
    if (ok)
        *ok = good && p.done();
    return c;
}

std::string const body = "preamble\r\n"
                         "--XyZ\r\n"
                         "Content-Disposition: form-data; name=\"note\"\r\n\r\n"
                         "just a field\r\n"
                         "--XyZ\r\n"
                         "Content-Disposition: form-data; name=\"file\"; filename=\"a; b.txt\"\r\n"
                         "Content-Type: text/plain\r\n\r\n"
                         "line one\r\n--XyAnot a boundary\r\n--Xy\r\nend"
                         "\r\n--XyZ--\r\nepilogue";

} // namespace

TEST_CASE("multipart: boundary from the Content-Type", "[streaming][multipart]")
{
    CHECK(multipart_parser::boundary_of("multipart/form-data; boundary=abc") == "abc");
    CHECK(multipart_parser::boundary_of("Multipart/Form-Data; charset=x; boundary=\"a b\"") ==
          "a b");
    CHECK_FALSE(multipart_parser::boundary_of("multipart/form-data"));
    CHECK_FALSE(multipart_parser::boundary_of("image/png; boundary=abc"));
    CHECK_FALSE(
        multipart_parser::boundary_of("multipart/form-data; boundary=" + std::string(71, 'a')));
}

TEST_CASE("multipart: the same parts whatever the chunking", "[streaming][multipart]")
{
    for (std::size_t chunk : {1u, 2u, 3u, 7u, 64u, 100000u})
    {
        INFO("chunk " << chunk);
        bool ok = false;
        auto c = parse(body, chunk, &ok);
        CHECK(ok);
        REQUIRE(c.parts.size() == 2);
        CHECK(c.parts[0].name == "note");
        CHECK_FALSE(c.parts[0].filename);
        CHECK(c.parts[1].name == "file");
        CHECK(c.parts[1].filename == "a; b.txt");
        CHECK(c.parts[1].content_type == "text/plain");
        CHECK(c.data == "line one\r\n--XyAnot a boundary\r\n--Xy\r\nend");
    }
}

TEST_CASE("multipart: binary data, empty parts, missing close", "[streaming][multipart]")
{
    std::string bin;
    for (int i = 0; i < 5000; ++i)
        bin += static_cast<char>(i * 7);
    std::string b = "--XyZ\r\nContent-Disposition: form-data; name=f; filename=x.bin\r\n\r\n" +
                    bin + "\r\n--XyZ--";
    bool ok = false;
    auto c = parse(b, 13, &ok);
    CHECK(ok);
    CHECK(c.data == bin);

    auto empty =
        parse("--XyZ\r\nContent-Disposition: form-data; name=f; filename=e\r\n\r\n\r\n--XyZ--\r\n",
              5, &ok);
    CHECK(ok);
    CHECK(empty.data.empty());

    parse("--XyZ\r\nContent-Disposition: form-data; name=f; filename=e\r\n\r\nabc", 4, &ok);
    CHECK_FALSE(ok); // no closing boundary
}

TEST_CASE("multipart: malformed input is refused", "[streaming][multipart]")
{
    bool ok = true;
    parse("--XyZ\r\nno colon here\r\n\r\nx\r\n--XyZ--", 3, &ok);
    CHECK_FALSE(ok);
    parse("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--", 3, &ok);
    CHECK_FALSE(ok); // no Content-Disposition
    parse("--XyZjunk\r\n", 3, &ok);
    CHECK_FALSE(ok);
    parse("--XyZ\r\nX-Big: " + std::string(10000, 'a') + "\r\n\r\n", 100, &ok);
    CHECK_FALSE(ok);
}

TEST_CASE("Range: single ranges, suffixes, unsatisfiable, ignored", "[streaming][range]")
{
    using k = range_result::kind;
    auto r = parse_range("bytes=0-99", 1000);
    CHECK(r.type == k::partial);
    CHECK(r.first == 0);
    CHECK(r.last == 99);
    r = parse_range("bytes=900-", 1000);
    CHECK((r.type == k::partial && r.first == 900 && r.last == 999));
    r = parse_range("bytes=-10", 1000);
    CHECK((r.type == k::partial && r.first == 990 && r.last == 999));
    r = parse_range("bytes=-5000", 1000);
    CHECK((r.type == k::partial && r.first == 0 && r.last == 999));
    r = parse_range("bytes=500-5000", 1000);
    CHECK((r.type == k::partial && r.first == 500 && r.last == 999));
    CHECK(parse_range("bytes=1000-", 1000).type == k::unsatisfiable);
    CHECK(parse_range("bytes=-0", 1000).type == k::unsatisfiable);
    CHECK(parse_range("bytes=0-", 0).type == k::unsatisfiable);
    CHECK(parse_range("bytes=5-1", 1000).type == k::none);
    CHECK(parse_range("bytes=0-1,5-6", 1000).type == k::none);
    CHECK(parse_range("items=0-1", 1000).type == k::none);
    CHECK(parse_range("bytes=a-b", 1000).type == k::none);
}
