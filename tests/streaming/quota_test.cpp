#include "chatstream/streaming/quota.hpp"

#include "chatstream/storage/database.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/usage.hpp"
#include "chatstream/streaming/provider.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::streaming;

namespace
{
// 2026-11-26T20:49:13Z and friends (a fake clock: every check takes "now").
constexpr std::int64_t nov26 = 1795726153000;
constexpr std::int64_t day_ms = 86'400'000;
} // namespace

TEST_CASE("daily message limit resets at UTC midnight", "[streaming][quota]")
{
    test::temp_dir dir;
    storage::database db(test::migrated_db(dir), storage::open_mode::read_write);
    auto const alice = storage::users::ensure(db, "alice");
    quota_limits const limits{2, 0};

    CHECK_FALSE(quota_violation(db, alice, nov26, limits));
    storage::usage::add_message(db, alice, "2026-11-26", "");
    storage::usage::add_message(db, alice, "2026-11-26", "gpt-4o"); // all models count
    auto why = quota_violation(db, alice, nov26, limits);
    REQUIRE(why);
    CHECK(*why == "daily message limit of 2 reached; it resets at 2026-11-27T00:00:00Z");
    // One millisecond before midnight still refused, at midnight allowed.
    auto const midnight = nov26 - nov26 % day_ms + day_ms;
    CHECK(quota_violation(db, alice, midnight - 1, limits));
    CHECK_FALSE(quota_violation(db, alice, midnight, limits));
    // Another user is not affected; 0 means unlimited.
    CHECK_FALSE(quota_violation(db, storage::users::ensure(db, "bob"), nov26, limits));
    CHECK_FALSE(quota_violation(db, alice, nov26, quota_limits{}));
}

TEST_CASE("monthly budget is a hard stop until the first of next month", "[streaming][quota]")
{
    test::temp_dir dir;
    storage::database db(test::migrated_db(dir), storage::open_mode::read_write);
    auto const alice = storage::users::ensure(db, "alice");
    quota_limits const limits{0, 1.0};

    storage::usage::add_completion(db, alice, "2026-10-31", "gpt-4o", 10, 10, 5.0); // last month
    storage::usage::add_completion(db, alice, "2026-11-02", "gpt-4o", 10, 10, 0.6);
    CHECK_FALSE(quota_violation(db, alice, nov26, limits));
    storage::usage::add_completion(db, alice, "2026-11-20", "gpt-4o-mini", 10, 10, 0.4);
    auto why = quota_violation(db, alice, nov26, limits);
    REQUIRE(why);
    CHECK(why->starts_with("monthly budget of $1.00 reached ($1.0000 spent)"));
    CHECK(why->ends_with("resets at 2026-12-01T00:00:00Z"));
    CHECK_FALSE(quota_violation(db, alice, nov26 + 5 * day_ms, limits)); // December

    auto rows = storage::usage::list(db, alice, "2026-11-01", "2026-11-30");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].day == "2026-11-02");
    CHECK(rows[1].model == "gpt-4o-mini");
    CHECK(rows[1].cost == Approx(0.4));
}

TEST_CASE("rate limiter: bursts, then a steady rate, per user", "[streaming][quota]")
{
    rate_limiter limiter(60, 3); // one per second, bursts of 3
    auto const t0 = rate_limiter::clock::time_point{} + std::chrono::hours(1);
    for (int i = 0; i < 3; ++i)
        CHECK_FALSE(limiter.acquire("alice", t0));
    auto wait = limiter.acquire("alice", t0);
    REQUIRE(wait);
    CHECK(wait->count() == 1000);
    CHECK_FALSE(limiter.acquire("bob", t0));
    CHECK(limiter.acquire("alice", t0 + std::chrono::milliseconds(500)));
    CHECK_FALSE(limiter.acquire("alice", t0 + std::chrono::milliseconds(1000)));
    // Idle time refills up to the burst, not beyond.
    auto const later = t0 + std::chrono::minutes(10);
    for (int i = 0; i < 3; ++i)
        CHECK_FALSE(limiter.acquire("alice", later));
    CHECK(limiter.acquire("alice", later));
    // 0 per minute = unlimited.
    rate_limiter off(0, 1);
    for (int i = 0; i < 100; ++i)
        CHECK_FALSE(off.acquire("alice", t0));
}

TEST_CASE("scripted titles: the first words, directives left out", "[streaming][scripted]")
{
    CHECK(scripted_title("Plan a weekend trip to Lisbon in May, please /tokens 3") ==
          "Plan a weekend trip to Lisbon");
    CHECK(scripted_title(R"(What is /tool calculator {"expression": "6 * 7"} exactly?)") ==
          "What is exactly");
    CHECK(scripted_title("/tokens 500") == "");
    CHECK(scripted_title("  hello,  world.  ") == "hello, world");
    CHECK(scripted_title("/delay 5 /fail 2 café 🚀 ok") == "café 🚀 ok");
}
