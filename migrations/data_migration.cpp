#include "chatstream/migrations/data_migration.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/migrations/copy.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <unordered_set>

namespace chatstream::migrations {
namespace {

namespace legacy = storage::legacy;
using storage::bind_opt;
using storage::opt_int;
using storage::opt_text;

// Binds without copying: the row outlives the statement's exec().
void bind_ref(storage::statement& s, int i, std::optional<std::string> const& v)
{
    if (v)
        s.bindNoCopy(i, *v);
    else
        s.bind(i);
}

void bind_attachment(storage::statement& s, int base, storage::attachment_row const& a)
{
    s.bindNoCopy(base + 1, a.id);
    s.bindNoCopy(base + 2, a.message_id);
    s.bindNoCopy(base + 3, a.conversation_id);
    s.bindNoCopy(base + 4, a.user_id);
    s.bind(base + 5, a.position);
    s.bindNoCopy(base + 6, a.type);
    s.bindNoCopy(base + 7, a.name);
    s.bindNoCopy(base + 8, a.storage_id);
    s.bindNoCopy(base + 9, a.mime_type);
    s.bind(base + 10, a.size);
    bind_ref(s, base + 11, a.metadata);
    s.bind(base + 12, a.created_at);
}

void bind_tool_call(storage::statement& s, int base, storage::tool_call_row const& t)
{
    s.bindNoCopy(base + 1, t.id);
    s.bindNoCopy(base + 2, t.message_id);
    s.bindNoCopy(base + 3, t.conversation_id);
    s.bindNoCopy(base + 4, t.user_id);
    s.bindNoCopy(base + 5, t.tool_call_id);
    s.bindNoCopy(base + 6, t.tool_name);
    s.bindNoCopy(base + 7, t.args);
    bind_ref(s, base + 8, t.result);
    bind_opt(s, base + 9, t.text_position);
    s.bind(base + 10, t.is_partial ? 1 : 0);
    s.bind(base + 11, t.timestamp);
    s.bind(base + 12, t.created_at);
}

constexpr char const* attachment_insert = "INSERT INTO attachments(id, message_id, conversation_id, user_id, position, "
                                          "type, name, storage_id, mime_type, size, metadata, created_at) VALUES";
constexpr char const* tool_call_insert = "INSERT INTO tool_calls(id, message_id, conversation_id, user_id, "
                                         "tool_call_id, tool_name, args, result, text_position, is_partial, timestamp, "
                                         "created_at) VALUES";

// Multi-row INSERT … ON CONFLICT DO NOTHING of @p rows (12 columns each).
// Chunks of 512 rows, the rest in power-of-two chunks, so at most ten
// distinct statements are ever prepared.
template <class Row, class Bind>
void insert_rows(storage::database& db, char const* insert, std::vector<Row const*> const& rows, Bind bind)
{
    std::size_t i = 0;
    while (i < rows.size())
    {
        std::size_t n = 512;
        while (n > rows.size() - i) n /= 2;
        std::string sql = insert;
        for (std::size_t r = 0; r < n; ++r)
        {
            sql += r ? ",(" : "(";
            for (int c = 1; c <= 12; ++c) sql += (c > 1 ? ",?" : "?") + std::to_string(r * 12 + c);
            sql += ')';
        }
        sql += " ON CONFLICT DO NOTHING";
        auto& s = db.prepare(sql);
        for (std::size_t r = 0; r < n; ++r) bind(s, static_cast<int>(r * 12), *rows[i + r]);
        s.exec();
        i += n;
    }
}

// A legacy column with nothing to convert: NULL, '' or '[]'. Checked on the
// raw column so the common case (no attachments, no tool calls) costs no
// allocation and no parse.
bool blank(storage::column const& c)
{
    if (c.isNull()) return true;
    auto const n = c.getBytes();
    return n == 0 || (n == 2 && std::memcmp(c.getText(), "[]", 2) == 0);
}

void assign(std::optional<std::string>& out, storage::column const& c)
{
    if (c.isNull())
        out.reset();
    else if (out)
        out->assign(c.getText(), static_cast<std::size_t>(c.getBytes()));
    else
        out.emplace(c.getText(), static_cast<std::size_t>(c.getBytes()));
}

// `raw` of migration_errors: the three legacy values as JSON strings (they
// may not be valid JSON, so they cannot be embedded as-is).
std::string raw_json(legacy::arrays const& a)
{
    std::string out = "{";
    auto field = [&](char const* name, std::optional<std::string> const& v, bool last) {
        core::append_json_string(out, name);
        out += ':';
        if (v)
            core::append_json_string(out, *v);
        else
            out += "null";
        if (!last) out += ',';
    };
    field("attachments", a.attachments, false);
    field("tool_calls", a.tool_calls, false);
    field("partial_tool_calls", a.partial_tool_calls, true);
    out += '}';
    return out;
}

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

void require_bookkeeping(storage::database& db)
{
    if (!db.has_table("migrations"))
        throw migration_error("the schema is not applied (no migrations table); run `chatstream migrate up`");
}

std::int64_t count_messages(storage::database& db)
{
    auto& q = db.prepare("SELECT count(*) FROM messages");
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

// Starts 001 from scratch: counters zero, no cursor, no quarantine.
void reset_normalize(storage::database& db, char const* phase, char const* status)
{
    auto const now = core::now_ms();
    auto& e = db.prepare("DELETE FROM migration_errors WHERE migration_id = ?");
    e.bind(1, normalize_id);
    e.exec();
    auto& q = db.prepare(
        "INSERT INTO migrations(id, name, phase, status, cursor, processed, success_count, error_count, "
        "last_processed_id, total_records, started_at, updated_at, completed_at, error) "
        "VALUES(?1, ?2, ?3, ?4, NULL, 0, 0, 0, NULL, ?5, ?6, ?6, NULL, NULL) "
        "ON CONFLICT(id) DO UPDATE SET phase = excluded.phase, status = excluded.status, cursor = NULL, "
        "processed = 0, success_count = 0, error_count = 0, last_processed_id = NULL, "
        "total_records = excluded.total_records, started_at = excluded.started_at, "
        "updated_at = excluded.updated_at, completed_at = NULL, error = NULL");
    q.bind(1, normalize_id);
    q.bind(2, normalize_name);
    q.bind(3, phase);
    q.bind(4, status);
    q.bind(5, count_messages(db));
    q.bind(6, now);
    q.exec();
}

void set_phase(storage::database& db, char const* id, char const* name, char const* phase, char const* status,
               bool completed)
{
    auto const now = core::now_ms();
    auto& q = db.prepare(
        "INSERT INTO migrations(id, name, phase, status, started_at, updated_at, completed_at) "
        "VALUES(?1, ?2, ?3, ?4, ?5, ?5, ?6) "
        "ON CONFLICT(id) DO UPDATE SET phase = excluded.phase, status = excluded.status, "
        "updated_at = excluded.updated_at, started_at = coalesce(migrations.started_at, excluded.started_at), "
        "completed_at = excluded.completed_at, error = NULL");
    q.bind(1, id);
    q.bind(2, name);
    q.bind(3, phase);
    q.bind(4, status);
    q.bind(5, now);
    if (completed)
        q.bind(6, now);
    else
        q.bind(6);
    q.exec();
}

std::unordered_set<std::string> quarantined_ids(storage::database& db)
{
    std::unordered_set<std::string> out;
    auto& q = db.prepare("SELECT record_id FROM migration_errors WHERE migration_id = ?");
    q.bind(1, normalize_id);
    while (q.executeStep()) out.insert(q.getColumn(0).getString());
    q.reset();
    return out;
}

} // namespace

//------------------------------------------------------------------------------

std::vector<migration_state> read_migrations(storage::database& db)
{
    std::vector<migration_state> out;
    if (!db.has_table("migrations")) return out;
    auto& q = db.prepare(std::string("SELECT ") + migration_columns + " FROM migrations ORDER BY id");
    while (q.executeStep()) out.push_back(read_state(q));
    q.reset();
    return out;
}

std::optional<migration_state> read_migration(storage::database& db, std::string const& id)
{
    if (!db.has_table("migrations")) return std::nullopt;
    auto& q = db.prepare(std::string("SELECT ") + migration_columns + " FROM migrations WHERE id = ?");
    q.bind(1, id);
    std::optional<migration_state> out;
    if (q.executeStep()) out = read_state(q);
    q.reset();
    return out;
}

std::int64_t quarantined_count(storage::database& db, std::string const& migration_id)
{
    if (!db.has_table("migration_errors")) return 0;
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
    auto opt_str = [&](std::optional<std::string> const& s) { return s ? str(*s) : std::string("null"); };
    auto opt_num = [](std::optional<std::int64_t> const& n) { return n ? std::to_string(*n) : std::string("null"); };

    std::string out = "{\"database\":" + str(db.is_postgres() ? redact_location(db.location()) : db.path());
    out += ",\"legacy_columns\":";
    out += db.has_table("messages") && storage::has_legacy_columns(db) ? "true" : "false";
    out += ",\"schema\":[";
    auto schema = read_schema_status(db);
    for (std::size_t i = 0; i < schema.size(); ++i)
        out += fmt::format("{}{{\"version\":{},\"name\":{},\"applied\":{},\"applied_at\":{}}}", i ? "," : "",
                           schema[i].version, str(schema[i].name), schema[i].applied, opt_num(schema[i].applied_at));
    out += "],\"migrations\":[";
    auto rows = read_migrations(db);
    for (std::size_t i = 0; i < rows.size(); ++i)
    {
        auto const& m = rows[i];
        out += fmt::format(
            "{}{{\"id\":{},\"name\":{},\"phase\":{},\"status\":{},\"cursor\":{},\"processed\":{},"
            "\"success_count\":{},\"error_count\":{},\"last_processed_id\":{},\"total_records\":{},"
            "\"started_at\":{},\"updated_at\":{},\"completed_at\":{},\"error\":{},\"quarantined\":{}}}",
            i ? "," : "", str(m.id), str(m.name), str(m.phase), str(m.status), opt_str(m.cursor), m.processed,
            m.success_count, m.error_count, opt_str(m.last_processed_id), opt_num(m.total_records),
            opt_num(m.started_at), opt_num(m.updated_at), opt_num(m.completed_at), opt_str(m.error),
            quarantined_count(db, m.id));
    }
    out += "]}";
    return out;
}

//------------------------------------------------------------------------------

normalize::start_kind normalize::begin(storage::database& db)
{
    require_bookkeeping(db);
    auto const state = read_migration(db, normalize_id);
    if (!storage::has_legacy_columns(db))
    {
        // A database created by chatstream (or already cleaned up) has no
        // arrays to convert.
        if (state && state->status == "completed") return start_kind::already_done;
        set_phase(db, normalize_id, normalize_name, "complete", "completed", true);
        return start_kind::not_applicable;
    }
    if (state && state->status == "completed") return start_kind::already_done;
    if (!state || state->status == "rolled-back")
    {
        reset_normalize(db, "backfill", "running");
        return start_kind::fresh;
    }

    // Resume (running after a crash, failed, or paused). The checkpoint is
    // only trusted if the row at the cursor still has the id we recorded.
    bool cursor_ok = !state->cursor;
    if (db.is_postgres())
        // PostgreSQL's cursor is the message id itself (see step): nothing
        // can renumber it, and a deleted message only means the keyset
        // resumes at the next id.
        cursor_ok = !state->cursor || state->cursor == state->last_processed_id;
    else if (state->cursor && state->last_processed_id)
    {
        auto& q = db.prepare("SELECT id FROM messages WHERE rowid = ?");
        q.bind(1, static_cast<std::int64_t>(std::stoll(*state->cursor)));
        cursor_ok = q.executeStep() && q.getColumn(0).getString() == *state->last_processed_id;
        q.reset();
    }
    if (!cursor_ok)
    {
        reset_normalize(db, "backfill", "running");
        return start_kind::fresh;
    }
    auto& q = db.prepare("UPDATE migrations SET phase = 'backfill', status = 'running', error = NULL, "
                         "total_records = ?2, updated_at = ?3 WHERE id = ?1");
    q.bind(1, normalize_id);
    q.bind(2, count_messages(db));
    q.bind(3, core::now_ms());
    q.exec();
    return start_kind::resumed;
}

batch_result normalize::step(storage::database& db, std::size_t batch_size)
{
    batch_result result;
    // SQLite: the rowid (physical order). PostgreSQL has no stable rowid
    // (ctid moves on UPDATE/VACUUM), so the keyset is the primary key: an
    // index range scan `id > cursor ORDER BY id`, in the database's collation.
    std::int64_t cursor = 0;
    std::optional<std::string> id_cursor;
    bool const pg = db.is_postgres();
    constexpr char const* pg_parents = "EXISTS(SELECT 1 FROM conversations c WHERE c.id = m.conversation_id)::int, "
                                       "EXISTS(SELECT 1 FROM users u WHERE u.id = m.user_id)::int";
    // PostgreSQL: the batch's rows go out in multi-row INSERTs at the end
    // (each statement is a network round trip); the converted rows they
    // point into live here until then.
    std::vector<legacy::rows> converted_rows;
    std::vector<storage::attachment_row const*> pending_att;
    std::vector<storage::tool_call_row const*> pending_tc;
    {
        auto& q = db.prepare("SELECT status, cursor FROM migrations WHERE id = ?");
        q.bind(1, normalize_id);
        if (!q.executeStep()) throw migration_error("migration 001 has not been started");
        auto const status = q.getColumn(0).getString();
        if (auto c = opt_text(q.getColumn(1)))
        {
            if (pg)
                id_cursor = std::move(c);
            else
                std::from_chars(c->data(), c->data() + c->size(), cursor);
        }
        q.reset();
        // Someone else (rollback, cleanup) changed the migration under us.
        if (status != "running") throw migration_error("migration 001 is " + status + ", not running");
    }

    auto& sel = !pg ? db.prepare("SELECT rowid, id, conversation_id, user_id, created_at, attachments, tool_calls, "
                                 "partial_tool_calls FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?")
                // PostgreSQL answers the parent check in the scan: one
                // round trip per message would dominate the batch.
                : id_cursor ? db.prepare(std::string("SELECT 0, id, conversation_id, user_id, created_at, attachments, "
                                                     "tool_calls, partial_tool_calls, ") +
                                         pg_parents + " FROM messages m WHERE id > ?2 ORDER BY id LIMIT ?1")
                            : db.prepare(std::string("SELECT 0, id, conversation_id, user_id, created_at, attachments, "
                                                     "tool_calls, partial_tool_calls, ") +
                                         pg_parents + " FROM messages m ORDER BY id LIMIT ?1");
    auto& parent = db.prepare("SELECT (SELECT 1 FROM conversations WHERE id = ?1), (SELECT 1 FROM users WHERE id = ?2)");
    // ON CONFLICT DO NOTHING: a row that already exists came from an earlier
    // (interrupted) run of this migration with the same values, or from the
    // live server, whose dual-write makes the arrays mirror the table. Either
    // way the table is already right, and re-runs stay idempotent.
    auto& ins_att = db.prepare(std::string(attachment_insert) + "(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    auto& ins_tc = db.prepare(std::string(tool_call_insert) + "(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    auto& quarantine = db.prepare(
        "INSERT INTO migration_errors(migration_id, record_id, error, raw, created_at) VALUES(?,?,?,?,?) "
        "ON CONFLICT(migration_id, record_id) DO UPDATE SET error = excluded.error, raw = excluded.raw");

    legacy::message_context ctx;
    legacy::arrays in;
    std::string last_id;
    std::int64_t const now = core::now_ms();

    auto quarantine_message = [&](std::string const& reason) {
        quarantine.reset();
        quarantine.clearBindings();
        quarantine.bind(1, normalize_id);
        quarantine.bindNoCopy(2, ctx.message_id);
        quarantine.bind(3, reason);
        quarantine.bind(4, raw_json(in));
        quarantine.bind(5, now);
        quarantine.exec();
        ++result.quarantined;
    };

    if (pg)
    {
        sel.bind(1, static_cast<std::int64_t>(batch_size));
        if (id_cursor) sel.bind(2, *id_cursor); // the first batch has no lower bound
    }
    else
    {
        sel.bind(1, cursor);
        sel.bind(2, static_cast<std::int64_t>(batch_size));
    }
    while (sel.executeStep())
    {
        ++result.processed;
        cursor = sel.getColumn(0).getInt64();
        auto const id_col = sel.getColumn(1);
        last_id.assign(id_col.getText(), static_cast<std::size_t>(id_col.getBytes()));
        auto const att = sel.getColumn(5), tc = sel.getColumn(6), ptc = sel.getColumn(7);
        if (blank(att) && blank(tc) && blank(ptc)) continue;

        ctx.message_id = last_id;
        ctx.conversation_id = sel.getColumn(2).getString();
        ctx.user_id = sel.getColumn(3).getString();
        ctx.created_at = sel.getColumn(4).getInt64();
        assign(in.attachments, att);
        assign(in.tool_calls, tc);
        assign(in.partial_tool_calls, ptc);

        auto converted = legacy::convert(ctx, in);
        if (auto* reason = std::get_if<std::string>(&converted))
        {
            quarantine_message(*reason);
            continue;
        }
        auto& rows = std::get<legacy::rows>(converted);
        if (rows.attachments.empty() && rows.tool_calls.empty()) continue;

        // Legacy databases rarely enforced foreign keys; an orphan message
        // would fail the insert and with it the whole batch.
        bool has_conversation = true, has_user = true;
        if (pg)
        {
            has_conversation = sel.getColumn(8).getInt() != 0;
            has_user = sel.getColumn(9).getInt() != 0;
        }
        else
        {
            parent.reset();
            parent.clearBindings();
            parent.bindNoCopy(1, ctx.conversation_id);
            parent.bindNoCopy(2, ctx.user_id);
            parent.executeStep();
            has_conversation = !parent.getColumn(0).isNull();
            has_user = !parent.getColumn(1).isNull();
            parent.reset();
        }
        if (!has_conversation || !has_user)
        {
            quarantine_message(!has_conversation ? "conversation '" + ctx.conversation_id + "' does not exist"
                                                 : "user '" + ctx.user_id + "' does not exist");
            continue;
        }

        if (pg)
        {
            converted_rows.push_back(std::move(rows));
            continue;
        }
        for (auto const& a : rows.attachments)
        {
            ins_att.reset();
            bind_attachment(ins_att, 0, a);
            ins_att.exec();
        }
        for (auto const& t : rows.tool_calls)
        {
            ins_tc.reset();
            bind_tool_call(ins_tc, 0, t);
            ins_tc.exec();
        }
    }
    sel.reset();
    if (pg)
    {
        for (auto const& r : converted_rows)
        {
            for (auto const& a : r.attachments) pending_att.push_back(&a);
            for (auto const& t : r.tool_calls) pending_tc.push_back(&t);
        }
        insert_rows(db, attachment_insert, pending_att, bind_attachment);
        insert_rows(db, tool_call_insert, pending_tc, bind_tool_call);
    }

    // The checkpoint commits in the caller's transaction with the rows above.
    result.done = result.processed < batch_size;
    auto& upd = db.prepare(
        "UPDATE migrations SET cursor = coalesce(?2, cursor), last_processed_id = coalesce(?3, last_processed_id), "
        "processed = processed + ?4, success_count = success_count + ?5, error_count = error_count + ?6, "
        "updated_at = ?7, phase = CASE WHEN ?8 THEN 'dual-write' ELSE phase END, "
        "status = CASE WHEN ?8 THEN 'completed' ELSE status END, "
        "completed_at = CASE WHEN ?8 THEN ?7 ELSE completed_at END WHERE id = ?1");
    upd.bind(1, normalize_id);
    if (result.processed)
    {
        upd.bind(2, pg ? last_id : std::to_string(cursor));
        upd.bind(3, last_id);
    }
    upd.bind(4, static_cast<std::int64_t>(result.processed));
    upd.bind(5, static_cast<std::int64_t>(result.processed - result.quarantined));
    upd.bind(6, static_cast<std::int64_t>(result.quarantined));
    upd.bind(7, core::now_ms());
    upd.bind(8, result.done ? 1 : 0);
    upd.exec();
    return result;
}

void normalize::mark_failed(storage::database& db, std::string const& error)
{
    // Only a running 001 can fail: a concurrent rollback's status stays.
    auto& q = db.prepare("UPDATE migrations SET status = 'failed', error = ?2, updated_at = ?3 "
                         "WHERE id = ?1 AND status = 'running'");
    q.bind(1, normalize_id);
    q.bind(2, error);
    q.bind(3, core::now_ms());
    q.exec();
}

void normalize::mark_paused(storage::database& db)
{
    auto& q = db.prepare(
        "UPDATE migrations SET status = 'pending', updated_at = ?2 WHERE id = ?1 AND status = 'running'");
    q.bind(1, normalize_id);
    q.bind(2, core::now_ms());
    q.exec();
}

//------------------------------------------------------------------------------

namespace {

// JSON values equal as documents (canonical text), not as spellings.
bool same_json(std::optional<std::string> const& a, std::optional<std::string> const& b)
{
    if (a.has_value() != b.has_value()) return false;
    if (!a || *a == *b) return true;
    auto ca = core::canonical_json(*a), cb = core::canonical_json(*b);
    return ca && cb && *ca == *cb;
}

template <class T>
std::string show(std::optional<T> const& v)
{
    if (!v) return "null";
    if constexpr (std::is_same_v<T, std::string>)
        return v->size() > 60 ? v->substr(0, 57) + "..." : *v;
    else
        return std::to_string(*v);
}

// Appends a description of every field that differs between the converted
// legacy row (@p want) and the table row (@p got).
void diff_attachment(storage::attachment_row const& want, storage::attachment_row const& got, std::string& out)
{
    auto field = [&](char const* name, std::string const& a, std::string const& b) {
        if (a != b) out += fmt::format(" {}: legacy={} table={};", name, a, b);
    };
    field("type", want.type, got.type);
    field("name", want.name, got.name);
    field("storage_id", want.storage_id, got.storage_id);
    field("mime_type", want.mime_type, got.mime_type);
    field("size", std::to_string(want.size), std::to_string(got.size));
    if (!same_json(want.metadata, got.metadata))
        out += fmt::format(" metadata: legacy={} table={};", show(want.metadata), show(got.metadata));
}

void diff_tool_call(storage::tool_call_row const& want, storage::tool_call_row const& got, std::string& out)
{
    if (want.tool_name != got.tool_name) out += fmt::format(" tool_name: legacy={} table={};", want.tool_name, got.tool_name);
    if (!same_json(want.args, got.args)) out += fmt::format(" args: legacy={} table={};", show(std::optional(want.args)), show(std::optional(got.args)));
    if (!same_json(want.result, got.result)) out += fmt::format(" result: legacy={} table={};", show(want.result), show(got.result));
    if (want.text_position != got.text_position)
        out += fmt::format(" text_position: legacy={} table={};", show(want.text_position), show(got.text_position));
    if (want.is_partial != got.is_partial) out += fmt::format(" is_partial: legacy={} table={};", want.is_partial, got.is_partial);
    if (want.timestamp != got.timestamp) out += fmt::format(" timestamp: legacy={} table={};", want.timestamp, got.timestamp);
}

} // namespace

verify_report verify(storage::database& db, std::size_t max_reported)
{
    verify_report report;
    require_bookkeeping(db);
    if (!storage::has_legacy_columns(db))
    {
        report.legacy_columns = false;
        return report;
    }
    auto add = [&](std::string const& id, std::string detail) {
        ++report.mismatch_count;
        if (report.mismatches.size() < max_reported) report.mismatches.push_back({id, std::move(detail)});
    };

    auto const quarantined = quarantined_ids(db);
    // SQLite steps through one scan in rowid order. libpq buffers a whole
    // result in memory, so PostgreSQL reads keyset pages on the primary key.
    bool const pg = db.is_postgres();
    constexpr std::int64_t page = 20000;
    std::optional<std::string> after;
    auto& att_q = db.prepare("SELECT type, name, storage_id, mime_type, size, metadata FROM attachments "
                             "WHERE message_id = ? ORDER BY position");
    legacy::message_context ctx;
    legacy::arrays in;
    for (;;)
    {
        auto& sel = !pg   ? db.prepare("SELECT id, conversation_id, user_id, created_at, attachments, tool_calls, "
                                       "partial_tool_calls FROM messages ORDER BY rowid")
                    : after ? db.prepare("SELECT id, conversation_id, user_id, created_at, attachments, tool_calls, "
                                         "partial_tool_calls FROM messages WHERE id > ?2 ORDER BY id LIMIT ?1")
                            : db.prepare("SELECT id, conversation_id, user_id, created_at, attachments, tool_calls, "
                                         "partial_tool_calls FROM messages ORDER BY id LIMIT ?1");
        if (pg) sel.bind(1, page);
        if (pg && after) sel.bind(2, *after);
        std::int64_t seen = 0;
        while (sel.executeStep())
        {
            ++report.messages;
            ++seen;
            ctx.message_id = sel.getColumn(0).getString();
            after = ctx.message_id;
            if (quarantined.count(ctx.message_id))
            {
                ++report.quarantined;
                continue;
            }
            auto const att = sel.getColumn(4), tc = sel.getColumn(5), ptc = sel.getColumn(6);
            // Blank messages are covered by the row totals below.
            if (blank(att) && blank(tc) && blank(ptc)) continue;
            ctx.conversation_id = sel.getColumn(1).getString();
            ctx.user_id = sel.getColumn(2).getString();
            ctx.created_at = sel.getColumn(3).getInt64();
            assign(in.attachments, att);
            assign(in.tool_calls, tc);
            assign(in.partial_tool_calls, ptc);
            auto converted = legacy::convert(ctx, in);
            if (auto* reason = std::get_if<std::string>(&converted))
            {
                add(ctx.message_id, "malformed and not quarantined: " + *reason);
                continue;
            }
            auto const& want = std::get<legacy::rows>(converted);
            report.expected_attachments += static_cast<std::int64_t>(want.attachments.size());
            report.expected_tool_calls += static_cast<std::int64_t>(want.tool_calls.size());

            std::vector<storage::attachment_row> got_att;
            att_q.reset();
            att_q.bind(1, ctx.message_id);
            while (att_q.executeStep())
            {
                storage::attachment_row a;
                a.type = att_q.getColumn(0).getString();
                a.name = att_q.getColumn(1).getString();
                a.storage_id = att_q.getColumn(2).getString();
                a.mime_type = att_q.getColumn(3).getString();
                a.size = att_q.getColumn(4).getInt64();
                a.metadata = opt_text(att_q.getColumn(5));
                got_att.push_back(std::move(a));
            }
            att_q.reset();
            // Sorted like convert's output (bytewise tool_call_id) to walk both together.
            auto got_tc = storage::tool_calls::rows_for_message(db, ctx.message_id);
            std::sort(got_tc.begin(), got_tc.end(),
                      [](auto const& a, auto const& b) { return a.tool_call_id < b.tool_call_id; });
            std::string detail;
            if (got_att.size() != want.attachments.size())
                detail += fmt::format(" attachments: legacy has {}, table has {};", want.attachments.size(), got_att.size());
            else
                for (std::size_t i = 0; i < got_att.size(); ++i)
                {
                    std::string d;
                    diff_attachment(want.attachments[i], got_att[i], d);
                    if (!d.empty()) detail += fmt::format(" attachments[{}]:{}", i, d);
                }
            // Both sides are ordered by tool_call_id (bytewise), so walk them together.
            std::size_t i = 0, j = 0;
            while (i < want.tool_calls.size() || j < got_tc.size())
            {
                if (j == got_tc.size() || (i < want.tool_calls.size() && want.tool_calls[i].tool_call_id < got_tc[j].tool_call_id))
                    detail += fmt::format(" tool call {} missing from table;", want.tool_calls[i++].tool_call_id);
                else if (i == want.tool_calls.size() || got_tc[j].tool_call_id < want.tool_calls[i].tool_call_id)
                    detail += fmt::format(" tool call {} not in legacy arrays;", got_tc[j++].tool_call_id);
                else
                {
                    std::string d;
                    diff_tool_call(want.tool_calls[i], got_tc[j], d);
                    if (!d.empty()) detail += fmt::format(" tool call {}:{}", got_tc[j].tool_call_id, d);
                    ++i, ++j;
                }
            }
            if (!detail.empty()) add(ctx.message_id, detail.substr(1));
        }
        sel.reset();
        if (!pg || seen < page) break;
    }

    // Rows of messages whose arrays are blank were not looked at one by one:
    // equal totals prove there are none (every non-blank message matched).
    auto table_count = [&](char const* table) {
        auto& q = db.prepare(fmt::format("SELECT count(*) FROM {} WHERE message_id NOT IN "
                                         "(SELECT record_id FROM migration_errors WHERE migration_id = ?)",
                                         table));
        q.bind(1, normalize_id);
        q.executeStep();
        auto const n = q.getColumn(0).getInt64();
        q.reset();
        return n;
    };
    auto extra_rows = [&](char const* table, char const* column, std::int64_t expected) {
        auto const have = table_count(table);
        if (have == expected) return;
        if (have < expected) return; // already reported per message
        auto& q = db.prepare(fmt::format(
            "SELECT DISTINCT t.message_id FROM {0} t JOIN messages m ON m.id = t.message_id "
            "WHERE coalesce(m.{1}, '') IN ('', '[]', 'null') {2} LIMIT 20",
            table, column,
            std::string(column) == "tool_calls" ? "AND coalesce(m.partial_tool_calls, '') IN ('', '[]', 'null')" : ""));
        std::size_t found = 0;
        while (q.executeStep())
        {
            ++found;
            add(q.getColumn(0).getString(), fmt::format("{} rows exist but the legacy {} array is empty", table, column));
        }
        q.reset();
        if (!found) add("*", fmt::format("{} has {} rows, the legacy arrays describe {}", table, have, expected));
    };
    extra_rows("attachments", "attachments", report.expected_attachments);
    extra_rows("tool_calls", "tool_calls", report.expected_tool_calls);

    // A clean verify of a finished backfill proves reads can come from the tables.
    if (report.ok())
    {
        auto& q = db.prepare("UPDATE migrations SET phase = 'dual-read', updated_at = ?2 "
                             "WHERE id = ?1 AND status = 'completed' AND phase = 'dual-write'");
        q.bind(1, normalize_id);
        q.bind(2, core::now_ms());
        q.exec();
    }
    return report;
}

//------------------------------------------------------------------------------

namespace {

constexpr char const* legacy_columns[] = {"attachments", "tool_calls", "partial_tool_calls"};

bool is_legacy_column(std::string const& name)
{
    for (auto const* c : legacy_columns)
        if (name == c) return true;
    return false;
}

// CREATE TABLE for the rebuilt messages: every current column except the
// legacy ones (so columns added by later schema files survive), with the
// constraints of the normalized schema (cascading foreign keys).
std::string rebuilt_messages_sql(storage::database& db, std::string& column_list)
{
    std::string cols;
    auto& q = db.prepare("SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('messages') ORDER BY cid");
    while (q.executeStep())
    {
        auto const name = q.getColumn(0).getString();
        if (is_legacy_column(name)) continue;
        auto const quoted = "\"" + name + "\"";
        if (!column_list.empty()) column_list += ", ";
        column_list += quoted;
        std::string def = "  " + quoted + " " + q.getColumn(1).getString();
        if (q.getColumn(4).getInt() == 1) def += " PRIMARY KEY";
        if (q.getColumn(2).getInt() == 1) def += " NOT NULL";
        if (!q.getColumn(3).isNull()) def += " DEFAULT " + q.getColumn(3).getString();
        if (name == "conversation_id") def += " REFERENCES conversations(id) ON DELETE CASCADE";
        if (name == "user_id") def += " REFERENCES users(id) ON DELETE CASCADE";
        if (name == "role") def += " CHECK(role IN ('user','assistant','system'))";
        cols += (cols.empty() ? "" : ",\n") + def;
    }
    q.reset();
    return "CREATE TABLE messages_rebuilt(\n" + cols + "\n)";
}

// Marks 002 done and 001 complete; in the caller's transaction.
void mark_cleaned_up(storage::database& db, std::int64_t messages)
{
    set_phase(db, cleanup_id, cleanup_name, "complete", "completed", true);
    auto& q = db.prepare("UPDATE migrations SET phase = 'complete', updated_at = ?2 WHERE id = ?1");
    q.bind(1, normalize_id);
    q.bind(2, core::now_ms());
    q.exec();
    auto& p = db.prepare("UPDATE migrations SET processed = ?2, success_count = ?2, total_records = ?2 "
                         "WHERE id = ?1");
    p.bind(1, cleanup_id);
    p.bind(2, messages);
    p.exec();
}

void mark_cleanup_failed(storage::database& db, std::string const& error)
{
    auto& q = db.prepare("UPDATE migrations SET status = 'failed', error = ?2, updated_at = ?3 WHERE id = ?1");
    q.bind(1, cleanup_id);
    q.bind(2, error);
    q.bind(3, core::now_ms());
    q.exec();
}

// PostgreSQL has transactional DDL and a real DROP COLUMN (a catalog change,
// no rewrite), so no rebuild: one transaction drops the three columns and
// swaps the legacy foreign keys for cascading ones (DESIGN §4). Adding a
// foreign key validates every row, so an orphan legacy message rolls it
// all back, like SQLite's foreign_key_check after the rebuild.
std::int64_t cleanup_postgres(storage::database& db)
{
    std::int64_t messages = 0;
    try
    {
        storage::transaction tx(db);
        messages = count_messages(db);
        std::vector<std::string> fks;
        {
            auto& q = db.prepare("SELECT conname FROM pg_catalog.pg_constraint "
                                 "WHERE conrelid = 'messages'::regclass AND contype = 'f'");
            while (q.executeStep()) fks.push_back(q.getColumn(0).getString());
            q.reset();
        }
        std::string alter = "ALTER TABLE messages DROP COLUMN attachments, DROP COLUMN tool_calls, "
                            "DROP COLUMN partial_tool_calls";
        for (auto const& name : fks) alter += ", DROP CONSTRAINT \"" + name + "\"";
        alter += ", ADD CONSTRAINT messages_conversation_id_fkey FOREIGN KEY(conversation_id) "
                 "REFERENCES conversations(id) ON DELETE CASCADE"
                 ", ADD CONSTRAINT messages_user_id_fkey FOREIGN KEY(user_id) REFERENCES users(id) ON DELETE CASCADE";
        try
        {
            db.exec(alter);
        }
        catch (storage::database_error const& e)
        {
            if (e.sqlstate() == "23503") // foreign_key_violation
                throw migration_error(std::string("a message references a missing conversation or user; cleanup "
                                                  "rolled back: ") + e.what());
            throw;
        }
        mark_cleaned_up(db, messages);
        tx.commit();
    }
    catch (std::exception const& e)
    {
        mark_cleanup_failed(db, e.what());
        throw;
    }
    return messages;
}

} // namespace

std::int64_t cleanup(storage::database& db)
{
    require_bookkeeping(db);
    if (!storage::has_legacy_columns(db))
    {
        auto const state = read_migration(db, cleanup_id);
        if (!state || state->status != "completed")
            set_phase(db, cleanup_id, cleanup_name, "complete", "completed", true);
        return 0;
    }
    auto const state = read_migration(db, normalize_id);
    if (!state || state->status != "completed")
        throw migration_error(fmt::format("migration 001 is {}; run `chatstream migrate up` until it completes "
                                          "before cleanup",
                                          state ? state->status + " (phase " + state->phase + ")" : "not started"));
    auto const report = verify(db, 5);
    if (!report.ok())
        throw migration_error(fmt::format("verify found {} mismatch(es) (first: {}: {}); refusing to drop the legacy "
                                          "columns",
                                          report.mismatch_count, report.mismatches.front().message_id,
                                          report.mismatches.front().detail));
    set_phase(db, cleanup_id, cleanup_name, "cleanup", "running", false);
    if (db.is_postgres()) return cleanup_postgres(db);

    // SQLite's 12-step ALTER: foreign keys off (outside any transaction),
    // copy into the new shape, swap, re-create indexes and triggers, check.
    db.exec("PRAGMA foreign_keys=OFF");
    std::int64_t copied = 0;
    try
    {
        storage::transaction tx(db);
        std::vector<std::string> dependents;
        {
            auto& q = db.prepare("SELECT sql FROM sqlite_master WHERE tbl_name = 'messages' "
                                 "AND type IN ('index','trigger') AND sql IS NOT NULL");
            while (q.executeStep()) dependents.push_back(q.getColumn(0).getString());
            q.reset();
        }
        std::string columns;
        db.exec("DROP TABLE IF EXISTS messages_rebuilt");
        db.exec(rebuilt_messages_sql(db, columns));
        copied = db.prepare("INSERT INTO messages_rebuilt(" + columns + ") SELECT " + columns +
                               " FROM messages ORDER BY rowid").exec();
        db.exec("DROP TABLE messages");
        db.exec("ALTER TABLE messages_rebuilt RENAME TO messages");
        for (auto const& sql : dependents) db.exec(sql);
        {
            auto& check = db.prepare("PRAGMA foreign_key_check");
            if (check.executeStep())
                throw migration_error(fmt::format("foreign_key_check after rebuild: row {} of {} references a missing "
                                                  "{}; cleanup rolled back",
                                                  check.getColumn(1).getString(), check.getColumn(0).getString(),
                                                  check.getColumn(2).getString()));
        }
        mark_cleaned_up(db, copied);
        tx.commit();
    }
    catch (std::exception const& e)
    {
        db.exec("PRAGMA foreign_keys=ON");
        mark_cleanup_failed(db, e.what());
        throw;
    }
    db.exec("PRAGMA foreign_keys=ON");
    // The copy doubled the WAL; fold it back so the file does not stay huge.
    db.try_exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return copied;
}

std::int64_t rollback(storage::database& db, std::string const& id)
{
    require_bookkeeping(db);
    if (id == cleanup_id)
        throw migration_error("002 dropped the legacy columns; it cannot be undone (restore a backup)");
    if (id != normalize_id) throw migration_error("unknown data migration '" + id + "' (known: 001, 002)");
    if (!storage::has_legacy_columns(db))
        throw migration_error("the legacy columns are gone (cleanup ran or the database never had them); "
                              "001 can no longer be rolled back");
    auto const state = read_migration(db, normalize_id);
    if (!state) throw migration_error("migration 001 has not run; nothing to roll back");

    storage::transaction tx(db);
    // Only rows whose id is the one 001 derives from the natural key; rows
    // the live server created keep their own ids and stay.
    auto deleted = db.prepare("DELETE FROM attachments WHERE id = message_id || ':att:' || position").exec();
    deleted += db.prepare("DELETE FROM tool_calls WHERE id = message_id || ':tc:' || tool_call_id").exec();
    reset_normalize(db, "backfill", "rolled-back");
    tx.commit();
    return deleted;
}

} // namespace chatstream::migrations
