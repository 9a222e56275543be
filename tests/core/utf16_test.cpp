#include "chatstream/core/utf16.hpp"

#include "chatstream/core/ids.hpp"
#include "chatstream/core/json.hpp"

#include <catch2/catch.hpp>

using namespace chatstream::core;

TEST_CASE("utf16_length counts surrogate pairs as two units", "[core][utf16]")
{
    CHECK(utf16_length("") == 0);
    CHECK(utf16_length("abc") == 3);
    CHECK(utf16_length("é") == 1);    // 2 bytes, 1 unit
    CHECK(utf16_length("漢字") == 2); // 3 bytes each
    CHECK(utf16_length("😀") == 2);    // 4 bytes, surrogate pair
    CHECK(utf16_length("a😀é漢") == 5);
}

TEST_CASE("utf8_offset_of_utf16 maps offsets and rounds down inside a pair", "[core][utf16]")
{
    std::string const s = "a😀b";
    CHECK(utf8_offset_of_utf16(s, 0) == 0);
    CHECK(utf8_offset_of_utf16(s, 1) == 1);
    CHECK(utf8_offset_of_utf16(s, 2) == 1); // inside the pair
    CHECK(utf8_offset_of_utf16(s, 3) == 5);
    CHECK(utf8_offset_of_utf16(s, 4) == 6);
    CHECK(utf8_offset_of_utf16(s, 99) == 6);
}

TEST_CASE("complete_utf8_prefix never cuts a sequence", "[core][utf16]")
{
    std::string const s = "x😀";
    for (std::size_t cut = 0; cut <= s.size(); ++cut)
    {
        auto n = complete_utf8_prefix(std::string_view(s).substr(0, cut));
        CHECK((n == cut || n == 1));
        CHECK(is_valid_utf8(std::string_view(s).substr(0, n)));
    }
    CHECK(complete_utf8_prefix("abc") == 3);
    CHECK(complete_utf8_prefix("ab\xe6\xbc") == 2);
}

TEST_CASE("is_valid_utf8 rejects overlongs, surrogates and truncation", "[core][utf16]")
{
    CHECK(is_valid_utf8("héllo 漢 😀"));
    CHECK_FALSE(is_valid_utf8("\xc0\xaf"));     // overlong '/'
    CHECK_FALSE(is_valid_utf8("\xed\xa0\x80")); // UTF-16 surrogate
    CHECK_FALSE(is_valid_utf8("\xf0\x9f\x98")); // truncated
    CHECK_FALSE(is_valid_utf8("\xff"));
}

TEST_CASE("ids are unique and sort by creation", "[core][ids]")
{
    std::string prev = new_id();
    for (int i = 0; i < 10000; ++i)
    {
        auto id = new_id();
        REQUIRE(id.size() == 36);
        REQUIRE(id > prev);
        prev = id;
    }
}

TEST_CASE("canonical_json minifies and validates", "[core][json]")
{
    CHECK(canonical_json(R"( { "a" : [1, 2.50, "x y"] } )").value() == R"({"a":[1,2.50,"x y"]})");
    std::string err;
    CHECK_FALSE(canonical_json("{\"a\":", &err));
    CHECK_FALSE(err.empty());
    CHECK(json_string("a\"b\\\n\x01") == "\"a\\\"b\\\\\\n\\u0001\"");
}
