#include "chatstream/storage/sources.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/consistency.hpp"
#include "chatstream/storage/repositories.hpp"
#include "rows.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::storage;

TEST_CASE("source URLs normalize as docs/design.md §9 says", "[sources]")
{
    struct row
    {
        char const* in;
        char const* out; // nullptr: not a source URL
    };
    row const table[] = {
        {"https://Example.COM/Path/Page?q=1#frag", "https://example.com/Path/Page?q=1"},
        {"HTTP://example.com:80/a", "http://example.com/a"},
        {"https://example.com:443/a", "https://example.com/a"},
        {"https://example.com:8443/a", "https://example.com:8443/a"},
        {"http://example.com:443/a", "http://example.com:443/a"},
        {"https://example.com", "https://example.com/"},
        {"https://example.com/a?utm_source=x&id=7&UTM_Medium=y", "https://example.com/a?id=7"},
        {"https://example.com/a?utm_source=x&utm_campaign=z", "https://example.com/a"},
        {"https://example.com/a?utmost=1", "https://example.com/a?utmost=1"},
        {"https://example.com/%7Euser/", "https://example.com/%7Euser/"},
        {"https://EXAMPLE.com/CaseKept", "https://example.com/CaseKept"},
        {"https://[2001:DB8::1]:443/x", "https://[2001:db8::1]/x"},
        {"ftp://example.com/file", nullptr},
        {"javascript:alert(1)", nullptr},
        {"/relative/path", nullptr},
        {"not a url", nullptr},
        {"https:///nohost", nullptr},
        {"", nullptr},
    };
    for (auto const& r : table)
    {
        CAPTURE(r.in);
        auto n = normalize_source_url(r.in);
        if (r.out)
        {
            REQUIRE(n);
            CHECK(*n == r.out);
        }
        else
            CHECK_FALSE(n);
    }
    CHECK(source_domain("https://www.example.com/a") == "example.com");
    CHECK(source_domain("https://docs.example.com/a") == "docs.example.com");
    CHECK(source_url_hash("https://example.com/") ==
          "0f115db062b7c0dd030b16878c99dea5c354b49dc37b38eb8846179c7783e9d7");
}

namespace
{

struct fixture
{
    test::temp_dir dir;
    database db{test::migrated_db(dir), open_mode::read_write};
    std::string alice = users::ensure(db, "alice");
    std::string bob = users::ensure(db, "bob");
    std::string conv = test::insert_conversation(db, alice, core::now_ms()).id;

    std::string message(std::string const& status = status::generating)
    {
        return test::insert_message(db, conv, alice, status, core::now_ms()).id;
    }

    bool cite(std::string const& msg, std::int64_t position, std::string const& url,
              std::optional<std::string> title = {})
    {
        auto normalized = *normalize_source_url(url);
        source_row r;
        r.message_id = msg;
        r.conversation_id = conv;
        r.user_id = alice;
        r.position = position;
        r.url_hash = source_url_hash(normalized);
        r.url = url;
        r.title = std::move(title);
        r.provider = "upstream";
        return sources::insert(db, r, normalized);
    }

    std::int64_t count(std::string const& sql)
    {
        auto& q = db.prepare(sql);
        q.executeStep();
        auto n = q.getColumn(0).getInt64();
        q.reset();
        return n;
    }
};

} // namespace

TEST_CASE_METHOD(fixture, "citations dedup per message and count accesses across messages",
                 "[sources]")
{
    auto const m1 = message();
    auto const m2 = message();
    CHECK(cite(m1, 1, "https://example.com/a#x", "First"));
    // The same normalized URL again in the same message: no second row,
    // the first title stays.
    CHECK_FALSE(cite(m1, 2, "https://EXAMPLE.com/a?utm_source=feed", "Second"));
    // Idempotent replay of the same citation (a retried writer job).
    CHECK_FALSE(cite(m1, 1, "https://example.com/a", "First"));
    CHECK(cite(m1, 2, "https://other.org/"));
    CHECK(cite(m2, 1, "https://example.com/a"));

    auto const rows = sources::list_for_message(db, alice, m1);
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].source.position == 1);
    CHECK(rows[0].source.title == "First");
    CHECK(rows[0].source.is_partial);
    REQUIRE(rows[0].metadata);
    CHECK(rows[0].metadata->url == "https://example.com/a");
    CHECK(rows[0].metadata->domain == "example.com");
    CHECK(rows[0].metadata->access_count == 2);
    CHECK(rows[1].metadata->access_count == 1);
    CHECK(count("SELECT count(*) FROM source_metadata") == 2);

    SECTION("another user's message reads as nothing")
    {
        CHECK(sources::list_for_message(db, bob, m1).empty());
    }
    SECTION("deleting a message takes its citations and their counts with it")
    {
        REQUIRE(messages::remove(db, alice, m1));
        CHECK(count("SELECT access_count FROM source_metadata WHERE url = "
                    "'https://example.com/a'") == 1);
        // other.org was cited only by m1: its metadata goes too.
        CHECK(count("SELECT count(*) FROM source_metadata") == 1);
        CHECK(check_consistency(db, false).problems.empty());
    }
    SECTION("deleting the conversation cascades through every table")
    {
        REQUIRE(conversations::remove(db, alice, conv));
        CHECK(count("SELECT count(*) FROM sources") == 0);
        CHECK(count("SELECT count(*) FROM source_metadata") == 0);
    }
    SECTION("the end of a generation leaves none partial, whatever the status")
    {
        messages::completion c;
        c.status = status::stopped;
        c.completed_at = core::now_ms();
        REQUIRE(messages::finish(db, m1, c));
        for (auto const& r : sources::rows_for_message(db, m1))
            CHECK_FALSE(r.is_partial);
        REQUIRE(messages::interrupt(db, m2, core::now_ms()));
        for (auto const& r : sources::rows_for_message(db, m2))
            CHECK_FALSE(r.is_partial);
        CHECK(check_consistency(db, true).problems.empty());
    }
    SECTION("a branch copies the citations and counts them")
    {
        messages::completion c;
        c.status = status::complete;
        c.completed_at = core::now_ms();
        REQUIRE(messages::finish(db, m1, c));
        auto const branch = conversations::branch(db, alice, m1, core::new_id(), core::now_ms());
        CHECK(count("SELECT count(*) FROM sources WHERE conversation_id = '" + branch.id + "'") ==
              2);
        CHECK(count("SELECT access_count FROM source_metadata WHERE url = "
                    "'https://example.com/a'") == 3);
    }
}

TEST_CASE_METHOD(fixture, "enrichment results land on the metadata row", "[sources]")
{
    auto const m = message();
    REQUIRE(cite(m, 1, "https://example.com/a"));
    auto const hash = source_url_hash("https://example.com/a");
    CHECK(sources::needs_enrichment(db, hash));
    source_metadata_row meta;
    meta.url_hash = hash;
    meta.og_title = "Title";
    meta.favicon = "https://example.com/favicon.ico";
    meta.fetched_at = 42;
    auto const citers = sources::set_metadata(db, meta);
    REQUIRE(citers.size() == 1);
    CHECK(citers[0].user_id == alice);
    CHECK(citers[0].conversation_id == conv);
    CHECK_FALSE(sources::needs_enrichment(db, hash));
    auto const rows = sources::list_for_message(db, alice, m);
    REQUIRE(rows.size() == 1);
    CHECK(rows[0].metadata->og_title == "Title");
    CHECK(rows[0].metadata->fetched_at == 42);
    CHECK_FALSE(rows[0].metadata->error);
    // An unknown hash touches nothing and wakes no one.
    meta.url_hash = std::string(64, '0');
    CHECK(sources::set_metadata(db, meta).empty());
}

TEST_CASE_METHOD(fixture, "check reports what the source triggers normally prevent", "[sources]")
{
    auto const m = message(status::complete);
    REQUIRE(cite(m, 1, "https://example.com/a"));
    db.exec("UPDATE sources SET is_partial = 1");
    db.exec("UPDATE source_metadata SET access_count = 5");
    auto const problems = check_consistency(db, false).problems;
    auto const has = [&](std::string_view what)
    { return std::ranges::any_of(problems, [&](auto const& p) { return p.find(what) == 0; }); };
    CHECK(has("sources left partial on a finished message"));
    CHECK(has("source metadata whose access_count is not its citations"));
}
