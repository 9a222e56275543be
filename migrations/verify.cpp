#include "chatstream/migrations/data_migration.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/legacy.hpp"
#include "chatstream/storage/repositories.hpp"
#include "detail/legacy_scan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <thread>
#include <unordered_set>

// verify: every message's legacy arrays against its rows.
namespace chatstream::migrations
{
namespace
{

namespace legacy = storage::legacy;
using storage::opt_text;
using namespace detail;

std::unordered_set<std::string> quarantined_ids(storage::database& db)
{
    std::unordered_set<std::string> out;
    auto& q = db.prepare("SELECT record_id FROM migration_errors WHERE migration_id = ?");
    q.bind(1, normalize_id);
    while (q.executeStep())
        out.insert(q.getColumn(0).getString());
    q.reset();
    return out;
}

// JSON values equal as documents (canonical text), not as spellings.
bool same_json(std::optional<std::string> const& a, std::optional<std::string> const& b)
{
    if (a.has_value() != b.has_value())
        return false;
    if (!a || *a == *b)
        return true;
    auto ca = core::canonical_json(*a), cb = core::canonical_json(*b);
    return ca && cb && *ca == *cb;
}

template <class T> std::string show(std::optional<T> const& v)
{
    if (!v)
        return "null";
    if constexpr (std::is_same_v<T, std::string>)
        return v->size() > 60 ? v->substr(0, 57) + "..." : *v;
    else
        return std::to_string(*v);
}

// Appends a description of every field that differs between the converted
// legacy row (@p want) and the table row (@p got).
void diff_attachment(storage::attachment_row const& want, storage::attachment_row const& got,
                     std::string& out)
{
    auto field = [&](char const* name, std::string const& a, std::string const& b)
    {
        if (a != b)
            out += fmt::format(" {}: legacy={} table={};", name, a, b);
    };
    field("type", want.type, got.type);
    field("name", want.name, got.name);
    field("storage_id", want.storage_id, got.storage_id);
    field("mime_type", want.mime_type, got.mime_type);
    field("size", std::to_string(want.size), std::to_string(got.size));
    if (!same_json(want.metadata, got.metadata))
        out +=
            fmt::format(" metadata: legacy={} table={};", show(want.metadata), show(got.metadata));
}

void diff_tool_call(storage::tool_call_row const& want, storage::tool_call_row const& got,
                    std::string& out)
{
    if (want.tool_name != got.tool_name)
        out += fmt::format(" tool_name: legacy={} table={};", want.tool_name, got.tool_name);
    if (!same_json(want.args, got.args))
        out += fmt::format(" args: legacy={} table={};", show(std::optional(want.args)),
                           show(std::optional(got.args)));
    if (!same_json(want.result, got.result))
        out += fmt::format(" result: legacy={} table={};", show(want.result), show(got.result));
    if (want.text_position != got.text_position)
        out += fmt::format(" text_position: legacy={} table={};", show(want.text_position),
                           show(got.text_position));
    if (want.is_partial != got.is_partial)
        out += fmt::format(" is_partial: legacy={} table={};", want.is_partial, got.is_partial);
    if (want.timestamp != got.timestamp)
        out += fmt::format(" timestamp: legacy={} table={};", want.timestamp, got.timestamp);
}

// Converts and compares the messages after @p after up to rowid @p until
// (SQLite; PostgreSQL: all) on @p db, counting into @p report.
void check_messages(storage::database& db, std::unordered_set<std::string> const& quarantined,
                    std::optional<std::string> after, std::int64_t until, std::size_t max_reported,
                    verify_report& report)
{
    auto add = [&](std::string const& id, std::string detail)
    {
        ++report.mismatch_count;
        if (report.mismatches.size() < max_reported)
            report.mismatches.push_back({id, std::move(detail)});
    };
    auto& att_q =
        db.prepare("SELECT type, name, storage_id, mime_type, size, metadata FROM attachments "
                   "WHERE message_id = ? ORDER BY position");
    legacy::message_context ctx;
    legacy::arrays in;
    message_scan scan(db, std::move(after), 0, false, until);
    while (scan.next())
    {
        ++report.messages;
        ctx.message_id = scan.id();
        if (quarantined.count(ctx.message_id))
        {
            ++report.quarantined;
            continue;
        }
        auto const att = scan.column(5), tc = scan.column(6), ptc = scan.column(7);
        // Blank messages are covered by the row totals below.
        if (blank(att) && blank(tc) && blank(ptc))
            continue;
        ctx.conversation_id = scan.column(2).getString();
        ctx.user_id = scan.column(3).getString();
        ctx.created_at = scan.column(4).getInt64();
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
            detail += fmt::format(" attachments: legacy has {}, table has {};",
                                  want.attachments.size(), got_att.size());
        else
            for (std::size_t i = 0; i < got_att.size(); ++i)
            {
                std::string d;
                diff_attachment(want.attachments[i], got_att[i], d);
                if (!d.empty())
                    detail += fmt::format(" attachments[{}]:{}", i, d);
            }
        // Both sides are ordered by tool_call_id (bytewise), so walk them together.
        std::size_t i = 0, j = 0;
        while (i < want.tool_calls.size() || j < got_tc.size())
        {
            if (j == got_tc.size() || (i < want.tool_calls.size() &&
                                       want.tool_calls[i].tool_call_id < got_tc[j].tool_call_id))
                detail += fmt::format(" tool call {} missing from table;",
                                      want.tool_calls[i++].tool_call_id);
            else if (i == want.tool_calls.size() ||
                     got_tc[j].tool_call_id < want.tool_calls[i].tool_call_id)
                detail +=
                    fmt::format(" tool call {} not in legacy arrays;", got_tc[j++].tool_call_id);
            else
            {
                std::string d;
                diff_tool_call(want.tool_calls[i], got_tc[j], d);
                if (!d.empty())
                    detail += fmt::format(" tool call {}:{}", got_tc[j].tool_call_id, d);
                ++i, ++j;
            }
        }
        if (!detail.empty())
            add(ctx.message_id, detail.substr(1));
    }
}

// The checks after every message was compared: rows of blank messages
// (totals), then the phase.
void finish(storage::database& db, std::size_t max_reported, verify_report& report);

verify_report run_verify(storage::database& db, std::size_t max_reported, unsigned threads)
{
    verify_report report;
    require_bookkeeping(db);
    if (!storage::has_legacy_columns(db))
    {
        report.legacy_columns = false;
        return report;
    }
    auto const quarantined = quarantined_ids(db);
    std::int64_t max_rowid = 0;
    if (!db.is_postgres() && threads > 1)
    {
        auto& q = db.prepare("SELECT coalesce(max(rowid), 0) FROM messages");
        q.executeStep();
        max_rowid = q.getColumn(0).getInt64();
        q.reset();
    }
    // Small tables are not worth a connection per thread.
    if (max_rowid < 10000)
        threads = 1;
    if (threads == 1)
        check_messages(db, quarantined, std::nullopt, std::numeric_limits<std::int64_t>::max(),
                       max_reported, report);
    else
    {
        // Range i is rowid (lo_i, hi_i]; range 0 runs here on the caller's
        // connection, the others on read connections of their own (the
        // conversion is CPU-bound and simdjson's parsers are thread_local).
        std::vector<verify_report> parts(threads);
        std::vector<std::exception_ptr> errors(threads);
        auto bound = [&](unsigned i) {
            return i == threads ? std::numeric_limits<std::int64_t>::max()
                                : max_rowid / threads * i;
        };
        std::vector<std::thread> workers;
        for (unsigned i = 1; i < threads; ++i)
            workers.emplace_back(
                [&, i]
                {
                    try
                    {
                        storage::database reader(db.path(), storage::open_mode::read_only);
                        reader.exec("PRAGMA mmap_size=2147418112");
                        check_messages(reader, quarantined, std::to_string(bound(i)), bound(i + 1),
                                       max_reported, parts[i]);
                    }
                    catch (...)
                    {
                        errors[i] = std::current_exception();
                    }
                });
        try
        {
            check_messages(db, quarantined, std::nullopt, bound(1), max_reported, parts[0]);
        }
        catch (...)
        {
            errors[0] = std::current_exception();
        }
        for (auto& w : workers)
            w.join();
        for (auto const& e : errors)
            if (e)
                std::rethrow_exception(e);
        for (auto& p : parts)
        {
            report.messages += p.messages;
            report.expected_attachments += p.expected_attachments;
            report.expected_tool_calls += p.expected_tool_calls;
            report.quarantined += p.quarantined;
            report.mismatch_count += p.mismatch_count;
            for (auto& m : p.mismatches)
                if (report.mismatches.size() < max_reported)
                    report.mismatches.push_back(std::move(m));
        }
    }
    finish(db, max_reported, report);
    return report;
}

void finish(storage::database& db, std::size_t max_reported, verify_report& report)
{
    auto add = [&](std::string const& id, std::string detail)
    {
        ++report.mismatch_count;
        if (report.mismatches.size() < max_reported)
            report.mismatches.push_back({id, std::move(detail)});
    };
    // Rows of messages whose arrays are blank were not looked at one by one:
    // equal totals prove there are none (every non-blank message matched).
    auto table_count = [&](char const* table)
    {
        auto& q = db.prepare(
            fmt::format("SELECT count(*) FROM {} WHERE message_id NOT IN "
                        "(SELECT record_id FROM migration_errors WHERE migration_id = ?)",
                        table));
        q.bind(1, normalize_id);
        q.executeStep();
        auto const n = q.getColumn(0).getInt64();
        q.reset();
        return n;
    };
    auto extra_rows = [&](char const* table, char const* column, std::int64_t expected)
    {
        auto const have = table_count(table);
        if (have == expected)
            return;
        if (have < expected)
            return; // already reported per message
        auto& q = db.prepare(fmt::format(
            "SELECT DISTINCT t.message_id FROM {0} t JOIN messages m ON m.id = t.message_id "
            "WHERE coalesce(m.{1}, '') IN ('', '[]', 'null') {2} LIMIT 20",
            table, column,
            std::string(column) == "tool_calls"
                ? "AND coalesce(m.partial_tool_calls, '') IN ('', '[]', 'null')"
                : ""));
        std::size_t found = 0;
        while (q.executeStep())
        {
            ++found;
            add(q.getColumn(0).getString(),
                fmt::format("{} rows exist but the legacy {} array is empty", table, column));
        }
        q.reset();
        if (!found)
            add("*", fmt::format("{} has {} rows, the legacy arrays describe {}", table, have,
                                 expected));
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
}

} // namespace

verify_report verify(storage::database& db, std::size_t max_reported)
{
    return run_verify(db, max_reported, 1);
}

verify_report detail::verify_frozen(storage::database& db, std::size_t max_reported,
                                    unsigned threads)
{
    return run_verify(db, max_reported, std::max(1u, threads));
}

} // namespace chatstream::migrations
