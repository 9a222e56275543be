#include "chatstream/migrations/data_migration.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/migrations/copy.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"

#include <fmt/format.h>

// The `migrations` rows: reading them and `migrate status --json`.
namespace chatstream::migrations
{
namespace
{

using storage::opt_int;
using storage::opt_text;

constexpr char const* migration_columns =
    "id, name, phase, status, cursor, processed, success_count, error_count, last_processed_id, "
    "total_records, started_at, updated_at, completed_at, error";

migration_state read_state(storage::statement& q)
{
    migration_state s;
    s.id = q.getColumn(0).getString();
    s.name = q.getColumn(1).getString();
    s.phase = q.getColumn(2).getString();
    s.status = q.getColumn(3).getString();
    s.cursor = opt_text(q.getColumn(4));
    s.processed = q.getColumn(5).getInt64();
    s.success_count = q.getColumn(6).getInt64();
    s.error_count = q.getColumn(7).getInt64();
    s.last_processed_id = opt_text(q.getColumn(8));
    s.total_records = opt_int(q.getColumn(9));
    s.started_at = opt_int(q.getColumn(10));
    s.updated_at = opt_int(q.getColumn(11));
    s.completed_at = opt_int(q.getColumn(12));
    s.error = opt_text(q.getColumn(13));
    return s;
}

} // namespace

std::vector<migration_state> read_migrations(storage::database& db)
{
    std::vector<migration_state> out;
    if (!db.has_table("migrations"))
        return out;
    auto& q =
        db.prepare(std::string("SELECT ") + migration_columns + " FROM migrations ORDER BY id");
    while (q.executeStep())
        out.push_back(read_state(q));
    q.reset();
    return out;
}

std::optional<migration_state> read_migration(storage::database& db, std::string const& id)
{
    if (!db.has_table("migrations"))
        return std::nullopt;
    auto& q =
        db.prepare(std::string("SELECT ") + migration_columns + " FROM migrations WHERE id = ?");
    q.bind(1, id);
    std::optional<migration_state> out;
    if (q.executeStep())
        out = read_state(q);
    q.reset();
    return out;
}

std::int64_t quarantined_count(storage::database& db, std::string const& migration_id)
{
    if (!db.has_table("migration_errors"))
        return 0;
    auto& q = db.prepare("SELECT count(*) FROM migration_errors WHERE migration_id = ?");
    q.bind(1, migration_id);
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

std::string status_json(storage::database& db)
{
    auto str = [](std::string const& s) { return core::json_string(s); };
    auto opt_str = [&](std::optional<std::string> const& s)
    { return s ? str(*s) : std::string("null"); };
    auto opt_num = [](std::optional<std::int64_t> const& n)
    { return n ? std::to_string(*n) : std::string("null"); };

    std::string out =
        "{\"database\":" + str(db.is_postgres() ? redact_location(db.location()) : db.path());
    out += ",\"legacy_columns\":";
    out += db.has_table("messages") && storage::has_legacy_columns(db) ? "true" : "false";
    out += ",\"schema\":[";
    auto schema = read_schema_status(db);
    for (std::size_t i = 0; i < schema.size(); ++i)
        out += fmt::format("{}{{\"version\":{},\"name\":{},\"applied\":{},\"applied_at\":{}}}",
                           i ? "," : "", schema[i].version, str(schema[i].name), schema[i].applied,
                           opt_num(schema[i].applied_at));
    out += "],\"migrations\":[";
    auto rows = read_migrations(db);
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        auto const& m = rows[i];
        out += fmt::format(
            "{}{{\"id\":{},\"name\":{},\"phase\":{},\"status\":{},\"cursor\":{},\"processed\":{},"
            "\"success_count\":{},\"error_count\":{},\"last_processed_id\":{},\"total_records\":{},"
            "\"started_at\":{},\"updated_at\":{},\"completed_at\":{},\"error\":{},\"quarantined\":{"
            "}}}",
            i ? "," : "", str(m.id), str(m.name), str(m.phase), str(m.status), opt_str(m.cursor),
            m.processed, m.success_count, m.error_count, opt_str(m.last_processed_id),
            opt_num(m.total_records), opt_num(m.started_at), opt_num(m.updated_at),
            opt_num(m.completed_at), opt_str(m.error), quarantined_count(db, m.id));
    }
    out += "]}";
    return out;
}

} // namespace chatstream::migrations
