#include "chatstream/core/clock.hpp"

#include <catch2/catch.hpp>

using namespace chatstream::core;

TEST_CASE("UTC day and month windows", "[core][clock]")
{
    // 2026-11-26T20:49:13.500Z
    std::int64_t const t = 1795726153500;
    CHECK(utc_day(t) == "2026-11-26");
    CHECK(utc_iso(t) == "2026-11-26T20:49:13Z");
    CHECK(utc_month_first_day(t) == "2026-11-01");
    CHECK(utc_iso(next_utc_midnight_ms(t)) == "2026-11-27T00:00:00Z");
    CHECK(utc_iso(next_utc_month_ms(t)) == "2026-12-01T00:00:00Z");

    // Exactly midnight belongs to the new day; the next midnight is a day on.
    auto const midnight = next_utc_midnight_ms(t);
    CHECK(utc_day(midnight) == "2026-11-27");
    CHECK(next_utc_midnight_ms(midnight) - midnight == 86'400'000);
    CHECK(utc_day(midnight - 1) == "2026-11-26");

    // Year and month ends, leap day.
    std::int64_t const dec31 = 1798761599000; // 2026-12-31T23:59:59Z
    CHECK(utc_iso(dec31) == "2026-12-31T23:59:59Z");
    CHECK(utc_iso(next_utc_month_ms(dec31)) == "2027-01-01T00:00:00Z");
    std::int64_t const feb29 = 1709164800000; // 2024-02-29T00:00:00Z
    CHECK(utc_day(feb29) == "2024-02-29");
    CHECK(utc_iso(next_utc_month_ms(feb29)) == "2024-03-01T00:00:00Z");
    CHECK(utc_day(0) == "1970-01-01");
}
