#include "chatstream/core/file_name.hpp"

#include "chatstream/core/json.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace chatstream::core;

TEST_CASE("sanitize_file_name keeps the last component, drops controls and leading dots", "[core]")
{
    CHECK(sanitize_file_name("report.pdf") == "report.pdf");
    CHECK(sanitize_file_name("../../evil.svg") == "evil.svg");
    CHECK(sanitize_file_name("C:\\Users\\me\\..\\a.txt") == "a.txt");
    CHECK(sanitize_file_name("a/b\\c/d.txt") == "d.txt");
    CHECK(sanitize_file_name(std::string("n\x00u\x1fl\x7fl.txt", 11)) == "null.txt");
    CHECK(sanitize_file_name("\xC2\x9F"
                             "c1.txt") == "c1.txt");
    CHECK(sanitize_file_name("\xE2\x80\xAEtxt.exe") == "txt.exe");
    CHECK(sanitize_file_name("bad\xFF\xC0utf8.txt") == "badutf8.txt");
    CHECK(sanitize_file_name(".htaccess") == "htaccess");
    CHECK(sanitize_file_name(" . . x  ") == "x");
    CHECK(sanitize_file_name("caf\xC3\xA9.txt") == "caf\xC3\xA9.txt");
    CHECK(sanitize_file_name("a.b.c") == "a.b.c");
}

TEST_CASE("sanitize_file_name falls back, never returns an empty name", "[core]")
{
    CHECK(sanitize_file_name("..", "stored.txt") == "stored.txt");
    CHECK(sanitize_file_name("dir/", "../stored.txt") == "stored.txt");
    CHECK(sanitize_file_name("", "") == "file");
    CHECK(sanitize_file_name("\x01", "...") == "file");
}

TEST_CASE("sanitize_file_name caps at max_file_name_bytes on a character boundary", "[core]")
{
    CHECK(sanitize_file_name(std::string(1000, 'a')) == std::string(max_file_name_bytes, 'a'));
    std::string euro; // 3 bytes each: 85 fit in 255
    for (int i = 0; i < 100; ++i)
        euro += "\xE2\x82\xAC";
    auto const out = sanitize_file_name(euro);
    CHECK(out.size() == 255);
    CHECK(out == euro.substr(0, 255));
    std::string e2 = "x"; // 1 + 2k bytes: the 128th é would end at 256
    for (int i = 0; i < 200; ++i)
        e2 += "\xC3\xA9";
    CHECK(sanitize_file_name(e2).size() == 255);
    CHECK(sanitize_file_name("a" + e2).size() == 254);
}

TEST_CASE("attachment_type follows the MIME type", "[core]")
{
    CHECK(attachment_type("image/png") == "image");
    CHECK(attachment_type("audio/mpeg") == "audio");
    CHECK(attachment_type("text/plain") == "file");
    CHECK(attachment_type("image") == "file");
    CHECK(attachment_type("") == "file");
}

TEST_CASE("merge_json_objects drops and overrides members", "[core]")
{
    auto const merged = merge_json_objects(R"({"width": 1, "t": 1.50, "prompt": "a"})",
                                           R"({"width":640,"height":480})", {"width", "height"});
    REQUIRE(merged);
    CHECK(*merged == R"({"t":1.5,"prompt":"a","width":640,"height":480})");
    CHECK(merge_json_objects("", R"({"a":1})") == R"({"a":1})");
    CHECK(merge_json_objects(R"({"a":1})", "") == R"({"a":1})");
    CHECK(merge_json_objects(R"({"height":2})", "", {"width", "height"}) == "{}");
    CHECK_FALSE(merge_json_objects("[1]", ""));
    CHECK_FALSE(merge_json_objects("{}", "nope"));
}
