// Node leases and generation claims (issue 10), on both backends.
#include "chatstream/storage/nodes.hpp"

#include "chatstream/core/ids.hpp"
#include "chatstream/storage/repositories.hpp"
#include "rows.hpp"
#include "support/temp_db.hpp"

#include <catch2/catch.hpp>

using namespace chatstream;
using namespace chatstream::storage;

namespace
{

constexpr std::int64_t lease = 10'000;

struct cluster_fixture
{
    test::temp_dir dir;
    database db{test::migrated_db(dir), open_mode::read_write};
    std::string alice = users::ensure(db, "alice");
    std::int64_t now = 1'800'000'000'000;

    std::string conversation() { return test::insert_conversation(db, alice, now).id; }
    std::string generating(std::string const& conv, std::optional<std::string> node)
    {
        auto const id = test::insert_message(db, conv, alice, status::generating, now).id;
        if (node)
            nodes::claim(db, id, *node, now);
        return id;
    }
    std::string status_of(std::string const& id)
    {
        return messages::get(db, alice, id).value().status;
    }
};

} // namespace

TEST_CASE_METHOD(cluster_fixture, "recovery interrupts only generations no live node runs",
                 "[storage][nodes]")
{
    nodes::join(db, "live", "127.0.0.1:1", now);
    nodes::join(db, "dead", "127.0.0.1:2", now - 3 * lease);
    auto const conv = conversation();
    auto const of_live = generating(conv, "live");
    auto const of_dead = generating(conversation(), "dead");
    auto const unclaimed = generating(conversation(), std::nullopt);
    auto const of_unknown = generating(conversation(), "never-joined");

    auto const interrupted = nodes::recover_orphans(db, now, lease);
    CHECK(interrupted.size() == 3);
    CHECK(status_of(of_live) == status::generating);
    CHECK(status_of(of_dead) == status::interrupted);
    CHECK(status_of(unclaimed) == status::interrupted);
    CHECK(status_of(of_unknown) == status::interrupted);
    // The claims of what was interrupted are gone; the live one stays.
    CHECK_FALSE(nodes::generation_owner(db, of_dead, now, lease));
    auto const owner = nodes::generation_owner(db, of_live, now, lease);
    REQUIRE(owner);
    CHECK(owner->node_id == "live");
    CHECK(owner->live);

    // Once "live" stops renewing, its generation goes too.
    CHECK(nodes::recover_orphans(db, now + 2 * lease, lease) == std::vector<std::string>{of_live});
    CHECK(status_of(of_live) == status::interrupted);
}

TEST_CASE_METHOD(cluster_fixture, "heartbeat renews a lease and reports a vanished node",
                 "[storage][nodes]")
{
    nodes::join(db, "n1", "a", now);
    CHECK(nodes::heartbeat(db, "n1", now + lease));
    auto const msg = generating(conversation(), "n1");
    // Renewed: still live at a time the first lease would have lapsed.
    CHECK(nodes::generation_owner(db, msg, now + lease + lease / 2, lease)->live);
    nodes::leave(db, "n1");
    CHECK_FALSE(nodes::heartbeat(db, "n1", now + 2 * lease));
    CHECK_FALSE(nodes::generation_owner(db, msg, now, lease)->live);
}

TEST_CASE_METHOD(cluster_fixture, "a claimed generation makes its conversation busy until released",
                 "[storage][nodes]")
{
    nodes::join(db, "n1", "a", now);
    auto const conv = conversation();
    CHECK_FALSE(nodes::busy_in_conversation(db, conv));
    auto const msg = generating(conv, "n1");
    CHECK(nodes::busy_in_conversation(db, conv));
    CHECK_FALSE(nodes::busy_in_conversation(db, conversation()));
    nodes::release(db, msg);
    CHECK_FALSE(nodes::busy_in_conversation(db, conv));
    // Deleting the message deletes its claim (ON DELETE CASCADE).
    auto const again = generating(conv, "n1");
    CHECK(messages::remove(db, alice, again));
    CHECK_FALSE(nodes::generation_owner(db, again, now, lease));
}

TEST_CASE_METHOD(cluster_fixture, "a node restarting under its id ends its old lease at once",
                 "[storage][nodes]")
{
    nodes::join(db, "n1", "a", now);
    auto const msg = generating(conversation(), "n1");
    CHECK(nodes::recover_orphans(db, now, lease).empty()); // live lease: left alone
    nodes::end_lease(db, "n1");                            // what cluster::start does first
    CHECK(nodes::recover_orphans(db, now, lease) == std::vector<std::string>{msg});
    nodes::join(db, "n1", "a", now); // and joins again, with a fresh lease
    CHECK(nodes::heartbeat(db, "n1", now + 1));
}
