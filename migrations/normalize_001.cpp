#include "chatstream/migrations/data_migration.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/rows.hpp"
#include "detail/legacy_scan.hpp"

#include <algorithm>

// Migration 001: legacy arrays -> attachments / tool_calls rows, one batch
// (and its checkpoint) per call of `step`.
namespace chatstream::migrations
{
namespace
{

namespace legacy = storage::legacy;
using storage::opt_text;
using namespace detail;

// The INSERT heads of the two tables, in storage's column order.
std::string const attachment_insert =
    std::string("INSERT INTO attachments(") + storage::rows::attachment_columns + ") VALUES";
std::string const tool_call_insert =
    std::string("INSERT INTO tool_calls(") + storage::rows::tool_call_columns + ") VALUES";

// Multi-row INSERT … ON CONFLICT DO NOTHING of @p rows (@p width columns
// each). Chunks of 512 rows, the rest in power-of-two chunks, so at most ten
// distinct statements are ever prepared.
template <class Row>
void insert_rows(storage::database& db, std::string const& insert, int width,
                 std::vector<Row const*> const& rows)
{
    std::size_t i = 0;
    while (i < rows.size())
    {
        std::size_t n = 512;
        while (n > rows.size() - i)
            n /= 2;
        std::string sql = insert;
        for (std::size_t r = 0; r < n; ++r)
        {
            sql += r ? ",(" : "(";
            for (int c = 1; c <= width; ++c)
                sql += (c > 1 ? ",?" : "?") + std::to_string(static_cast<int>(r) * width + c);
            sql += ')';
        }
        sql += " ON CONFLICT DO NOTHING";
        auto& s = db.prepare(sql);
        for (std::size_t r = 0; r < n; ++r)
            storage::rows::bind(s, static_cast<int>(r) * width, *rows[i + r]);
        s.exec();
        i += n;
    }
}

// `raw` of migration_errors: the three legacy values as JSON strings (they
// may not be valid JSON, so they cannot be embedded as-is).
std::string raw_json(legacy::arrays const& a)
{
    std::string out = "{";
    auto field = [&](char const* name, std::optional<std::string> const& v, bool last)
    {
        core::append_json_string(out, name);
        out += ':';
        if (v)
            core::append_json_string(out, *v);
        else
            out += "null";
        if (!last)
            out += ',';
    };
    field("attachments", a.attachments, false);
    field("tool_calls", a.tool_calls, false);
    field("partial_tool_calls", a.partial_tool_calls, true);
    out += '}';
    return out;
}

} // namespace

normalize::start_kind normalize::begin(storage::database& db)
{
    require_bookkeeping(db);
    auto const state = read_migration(db, normalize_id);
    if (!storage::has_legacy_columns(db))
    {
        // A database created by chatstream (or already cleaned up) has no
        // arrays to convert.
        if (state && state->status == "completed")
            return start_kind::already_done;
        set_phase(db, normalize_id, normalize_name, "complete", "completed", true);
        return start_kind::not_applicable;
    }
    if (state && state->status == "completed")
        return start_kind::already_done;
    if (!state || state->status == "rolled-back")
    {
        reset_normalize(db, "backfill", "running");
        return start_kind::fresh;
    }

    // Resume (running after a crash, failed, or paused). The checkpoint is
    // only trusted if the row at the cursor still has the id we recorded.
    bool cursor_ok = !state->cursor;
    if (db.is_postgres())
        // PostgreSQL's cursor is the message id itself (see message_scan):
        // nothing can renumber it, and a deleted message only means the
        // keyset resumes at the next id.
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
    auto& q =
        db.prepare("UPDATE migrations SET phase = 'backfill', status = 'running', error = NULL, "
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
    bool const pg = db.is_postgres();
    // The batch's rows go out after the scan, sorted (below); PostgreSQL's
    // in multi-row INSERTs (each statement is a network round trip). The
    // converted rows they point into live here until then.
    std::vector<legacy::rows> converted_rows;
    std::vector<storage::attachment_row const*> pending_att;
    std::vector<storage::tool_call_row const*> pending_tc;
    std::optional<std::string> cursor;
    {
        auto& q = db.prepare("SELECT status, cursor FROM migrations WHERE id = ?");
        q.bind(1, normalize_id);
        if (!q.executeStep())
            throw migration_error("migration 001 has not been started");
        auto const status = q.getColumn(0).getString();
        cursor = opt_text(q.getColumn(1));
        q.reset();
        // Someone else (rollback, cleanup) changed the migration under us.
        if (status != "running")
            throw migration_error("migration 001 is " + status + ", not running");
    }

    // ON CONFLICT DO NOTHING: a row that already exists came from an earlier
    // (interrupted) run of this migration with the same values, or from the
    // live server, whose dual-write makes the arrays mirror the table. Either
    // way the table is already right, and re-runs stay idempotent.
    auto& ins_att =
        db.prepare(attachment_insert + "(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    auto& ins_tc =
        db.prepare(tool_call_insert + "(?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING");
    auto& quarantine = db.prepare("INSERT INTO migration_errors(migration_id, record_id, error, "
                                  "raw, created_at) VALUES(?,?,?,?,?) "
                                  "ON CONFLICT(migration_id, record_id) DO UPDATE SET error = "
                                  "excluded.error, raw = excluded.raw");

    legacy::message_context ctx;
    legacy::arrays in;
    std::string last_cursor;
    std::int64_t const now = core::now_ms();

    auto quarantine_message = [&](std::string const& reason)
    {
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

    message_scan scan(db, std::move(cursor), batch_size, true);
    while (scan.next())
    {
        ++result.processed;
        auto const att = scan.column(5), tc = scan.column(6), ptc = scan.column(7);
        if (blank(att) && blank(tc) && blank(ptc))
            continue;

        ctx.message_id = scan.id();
        ctx.conversation_id = scan.column(2).getString();
        ctx.user_id = scan.column(3).getString();
        ctx.created_at = scan.column(4).getInt64();
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
        if (rows.attachments.empty() && rows.tool_calls.empty())
            continue;

        // Legacy databases rarely enforced foreign keys; an orphan message
        // would fail the insert and with it the whole batch.
        auto const [has_conversation, has_user] = scan.parents(ctx.conversation_id, ctx.user_id);
        if (!has_conversation || !has_user)
        {
            quarantine_message(!has_conversation
                                   ? "conversation '" + ctx.conversation_id + "' does not exist"
                                   : "user '" + ctx.user_id + "' does not exist");
            continue;
        }

        converted_rows.push_back(std::move(rows));
    }
    std::string const last_id = scan.id();
    if (result.processed)
        last_cursor = scan.cursor();

    // The batch's rows in primary-key order: each index page of the target
    // tables is then visited once per batch, in order, instead of once per
    // row at random (legacy ids are random). The UNIQUE(message_id, …)
    // index shares the order: the id starts with the message id.
    std::size_t n_att = 0, n_tc = 0;
    for (auto const& r : converted_rows)
        n_att += r.attachments.size(), n_tc += r.tool_calls.size();
    pending_att.reserve(n_att);
    pending_tc.reserve(n_tc);
    for (auto const& r : converted_rows)
    {
        for (auto const& a : r.attachments)
            pending_att.push_back(&a);
        for (auto const& t : r.tool_calls)
            pending_tc.push_back(&t);
    }
    auto by_id = [](auto const* a, auto const* b) { return a->id < b->id; };
    std::sort(pending_att.begin(), pending_att.end(), by_id);
    std::sort(pending_tc.begin(), pending_tc.end(), by_id);
    // SQLite: one cached single-row statement per row. Multi-row VALUES
    // (PostgreSQL's round-trip saver) measured 5-10 % slower here.
    if (pg)
    {
        insert_rows(db, attachment_insert, storage::rows::attachment_width, pending_att);
        insert_rows(db, tool_call_insert, storage::rows::tool_call_width, pending_tc);
    }
    else
    {
        for (auto const* a : pending_att)
        {
            ins_att.reset();
            storage::rows::bind(ins_att, 0, *a);
            ins_att.exec();
        }
        for (auto const* t : pending_tc)
        {
            ins_tc.reset();
            storage::rows::bind(ins_tc, 0, *t);
            ins_tc.exec();
        }
    }

    // The checkpoint commits in the caller's transaction with the rows above.
    result.done = result.processed < batch_size;
    auto& upd =
        db.prepare("UPDATE migrations SET cursor = coalesce(?2, cursor), last_processed_id = "
                   "coalesce(?3, last_processed_id), "
                   "processed = processed + ?4, success_count = success_count + ?5, error_count = "
                   "error_count + ?6, "
                   "updated_at = ?7, phase = CASE WHEN ?8 THEN 'dual-write' ELSE phase END, "
                   "status = CASE WHEN ?8 THEN 'completed' ELSE status END, "
                   "completed_at = CASE WHEN ?8 THEN ?7 ELSE completed_at END WHERE id = ?1");
    upd.bind(1, normalize_id);
    if (result.processed)
    {
        upd.bind(2, last_cursor);
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
    auto& q = db.prepare("UPDATE migrations SET status = 'pending', updated_at = ?2 WHERE id = ?1 "
                         "AND status = 'running'");
    q.bind(1, normalize_id);
    q.bind(2, core::now_ms());
    q.exec();
}

} // namespace chatstream::migrations
