#include "chatstream/storage/nodes.hpp"

#include "chatstream/storage/repositories.hpp"

namespace chatstream::storage::nodes
{

void join(database& db, std::string const& node_id, std::string const& address, std::int64_t now)
{
    auto& q = db.prepare(
        "INSERT INTO nodes(id, address, started_at, heartbeat_at) VALUES(?1, ?2, ?3, ?3) "
        "ON CONFLICT(id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at");
    q.bind(1, node_id);
    q.bind(2, address);
    q.bind(3, now);
    q.exec();
}

bool heartbeat(database& db, std::string const& node_id, std::int64_t now)
{
    auto& q = db.prepare("UPDATE nodes SET heartbeat_at = ?2 WHERE id = ?1");
    q.bind(1, node_id);
    q.bind(2, now);
    return q.exec() > 0;
}

void leave(database& db, std::string const& node_id)
{
    auto& q = db.prepare("DELETE FROM nodes WHERE id = ?");
    q.bind(1, node_id);
    q.exec();
}

void end_lease(database& db, std::string const& node_id)
{
    auto& q = db.prepare("UPDATE nodes SET heartbeat_at = 0 WHERE id = ?");
    q.bind(1, node_id);
    q.exec();
}

void claim(database& db, std::string const& message_id, std::string const& node_id,
           std::int64_t now)
{
    auto& q =
        db.prepare("INSERT INTO generations(message_id, node_id, started_at) VALUES(?1, ?2, ?3) "
                   "ON CONFLICT(message_id) DO UPDATE SET node_id = excluded.node_id");
    q.bind(1, message_id);
    q.bind(2, node_id);
    q.bind(3, now);
    q.exec();
}

void release(database& db, std::string const& message_id)
{
    auto& q = db.prepare("DELETE FROM generations WHERE message_id = ?");
    q.bind(1, message_id);
    q.exec();
}

std::optional<owner> generation_owner(database& db, std::string const& message_id, std::int64_t now,
                                      std::int64_t lease_ms)
{
    auto& q = db.prepare("SELECT g.node_id, coalesce(n.heartbeat_at, 0) FROM generations g "
                         "LEFT JOIN nodes n ON n.id = g.node_id WHERE g.message_id = ?");
    q.bind(1, message_id);
    std::optional<owner> out;
    if (q.executeStep())
        out = owner{q.getColumn(0).getString(), q.getColumn(1).getInt64() >= now - lease_ms};
    q.reset();
    return out;
}

bool busy_in_conversation(database& db, std::string const& conversation_id)
{
    if (db.is_postgres())
    {
        auto& lock = db.prepare("SELECT 1 FROM conversations WHERE id = ? FOR UPDATE");
        lock.bind(1, conversation_id);
        lock.executeStep();
        lock.reset();
    }
    auto& q = db.prepare("SELECT 1 FROM generations g JOIN messages m ON m.id = g.message_id "
                         "WHERE m.conversation_id = ? LIMIT 1");
    q.bind(1, conversation_id);
    bool const busy = q.executeStep();
    q.reset();
    return busy;
}

std::vector<std::string> recover_orphans(database& db, std::int64_t now, std::int64_t lease_ms)
{
    std::vector<std::string> ids;
    {
        // messages_by_status is a partial index on exactly these statuses.
        auto& q = db.prepare("SELECT m.id FROM messages m WHERE m.status IN "
                             "('pending','generating') AND NOT EXISTS ("
                             "SELECT 1 FROM generations g JOIN nodes n ON n.id = g.node_id "
                             "WHERE g.message_id = m.id AND n.heartbeat_at >= ?1)");
        q.bind(1, now - lease_ms);
        while (q.executeStep())
            ids.push_back(q.getColumn(0).getString());
        q.reset();
    }
    std::vector<std::string> interrupted;
    for (auto const& id : ids)
    {
        if (messages::interrupt(db, id, now))
            interrupted.push_back(id);
        release(db, id);
        notify(db, progress_channel, id);
    }
    // Nodes whose lease lapsed long ago and that run nothing any more.
    auto& gone = db.prepare("DELETE FROM nodes WHERE heartbeat_at < ?1 AND NOT EXISTS "
                            "(SELECT 1 FROM generations g WHERE g.node_id = nodes.id)");
    gone.bind(1, now - 10 * lease_ms);
    gone.exec();
    return interrupted;
}

void notify(database& db, char const* channel, std::string const& payload)
{
    if (!db.is_postgres())
        return;
    auto& q = db.prepare("SELECT pg_notify(?1, ?2)");
    q.bind(1, channel);
    q.bind(2, payload);
    q.executeStep();
    q.reset();
}

} // namespace chatstream::storage::nodes
