// `migrate copy`: SQLite → PostgreSQL, resumable and verified (copy.hpp).
#include "chatstream/migrations/copy.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/migrations/data_migration.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/repositories.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <variant>

namespace chatstream::migrations
{
namespace
{

using clock = std::chrono::steady_clock;

// How a column is read, from the SQLite declared type (its affinity rules):
// the source decides, and the target is read the same way, so both sides
// serialize one value identically whatever PostgreSQL type holds it.
enum class kind
{
    integer,
    real,
    text
};

kind kind_of(std::string type)
{
    std::transform(type.begin(), type.end(), type.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    if (type.find("INT") != std::string::npos)
        return kind::integer;
    if (type.find("REAL") != std::string::npos || type.find("FLOA") != std::string::npos ||
        type.find("DOUB") != std::string::npos)
        return kind::real;
    return kind::text;
}

struct column_spec
{
    std::string name;
    kind k = kind::text;
    int pk = 0; ///< 1-based position in the primary key, 0 = not part of it
};

struct table_spec
{
    std::string name;
    std::vector<column_spec> columns; ///< in source order
    std::vector<std::size_t> key;     ///< indexes into columns, in primary-key order
};

std::string quoted(std::string const& name)
{
    return "\"" + name + "\"";
}

table_spec read_table(storage::database& source, std::string const& name)
{
    table_spec t;
    t.name = name;
    auto& q = source.prepare("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid");
    q.bind(1, name);
    while (q.executeStep())
        t.columns.push_back({q.getColumn(0).getString(), kind_of(q.getColumn(1).getString()),
                             q.getColumn(2).getInt()});
    q.reset();
    std::vector<std::size_t> key;
    for (std::size_t i = 0; i < t.columns.size(); ++i)
        if (t.columns[i].pk)
            key.push_back(i);
    std::sort(key.begin(), key.end(),
              [&](auto a, auto b) { return t.columns[a].pk < t.columns[b].pk; });
    // Without a key there is no keyset to resume from and no conflict
    // target that makes a retried batch harmless.
    if (key.empty())
        throw migration_error("table " + name +
                              " has no primary key; migrate copy cannot resume it");
    t.key = std::move(key);
    return t;
}

// Source tables in an order where every table comes after the tables its
// foreign keys reference (names sorted first, so the order is stable). A
// killed offline load's stash of deferred index SQL stays behind: it is
// SQLite DDL for indexes the target's own schema already has.
std::vector<std::string> tables_in_fk_order(storage::database& source)
{
    std::vector<std::string> names;
    {
        auto& q = source.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name <> 'schema_migrations' AND name <> 'migration_deferred_indexes' ORDER BY "
            "name");
        while (q.executeStep())
            names.push_back(q.getColumn(0).getString());
        q.reset();
    }
    std::map<std::string, std::set<std::string>> deps;
    for (auto const& n : names)
    {
        auto& q = source.prepare("SELECT \"table\" FROM pragma_foreign_key_list(?)");
        q.bind(1, n);
        while (q.executeStep())
            if (auto parent = q.getColumn(0).getString(); parent != n)
                deps[n].insert(parent);
        q.reset();
    }
    std::vector<std::string> out;
    std::set<std::string> placed;
    while (out.size() < names.size())
    {
        bool progress = false;
        for (auto const& n : names)
        {
            if (placed.count(n))
                continue;
            bool ready = true;
            for (auto const& d : deps[n])
                if (!placed.count(d) && std::find(names.begin(), names.end(), d) != names.end())
                    ready = false;
            if (!ready)
                continue;
            out.push_back(n);
            placed.insert(n);
            progress = true;
        }
        if (!progress)
            throw migration_error(
                "the source's foreign keys form a cycle; migrate copy cannot order them");
    }
    return out;
}

using value = std::variant<std::monostate, std::int64_t, double, std::string>;

value read_value(storage::statement& q, int i, kind k)
{
    auto const c = q.getColumn(i);
    if (c.isNull())
        return {};
    switch (k)
    {
    case kind::integer:
        return c.getInt64();
    case kind::real:
        return c.getDouble();
    case kind::text:
        return c.getString();
    }
    return {};
}

void bind_value(storage::statement& s, int i, value const& v)
{
    if (auto const* n = std::get_if<std::int64_t>(&v))
        s.bind(i, *n);
    else if (auto const* d = std::get_if<double>(&v))
        s.bind(i, *d);
    else if (auto const* t = std::get_if<std::string>(&v))
        s.bindNoCopy(i, *t);
    else
        s.bind(i);
}

// Canonical serialization of one value: a tag, then the value; text
// length-prefixed so no byte sequence is ambiguous. Doubles print as the
// shortest text that reads back to the same bits, which both engines'
// values agree on whatever their own text output would be.
void append_value(std::string& out, value const& v)
{
    if (auto const* n = std::get_if<std::int64_t>(&v))
        fmt::format_to(std::back_inserter(out), "I{};", *n);
    else if (auto const* d = std::get_if<double>(&v))
        fmt::format_to(std::back_inserter(out), "R{};", *d);
    else if (auto const* t = std::get_if<std::string>(&v))
    {
        fmt::format_to(std::back_inserter(out), "T{}:", t->size());
        out += *t;
    }
    else
        out += 'N';
}

// The key of the last copied row, as stored in copy_progress.last_key.
std::string encode_key(std::vector<value> const& key)
{
    std::string out;
    for (auto const& v : key)
        append_value(out, v);
    return out;
}

std::vector<value> decode_key(std::string const& text, table_spec const& t)
{
    std::vector<value> out;
    std::size_t i = 0;
    auto fail = [&]
    { return migration_error("copy_progress.last_key of " + t.name + " is unreadable: " + text); };
    while (i < text.size())
    {
        char const tag = text[i++];
        if (tag == 'N')
        {
            out.emplace_back();
            continue;
        }
        if (tag == 'I')
        {
            auto const end = text.find(';', i);
            if (end == std::string::npos)
                throw fail();
            out.emplace_back(static_cast<std::int64_t>(std::stoll(text.substr(i, end - i))));
            i = end + 1;
        }
        else if (tag == 'T')
        {
            auto const colon = text.find(':', i);
            if (colon == std::string::npos)
                throw fail();
            auto const n = std::stoull(text.substr(i, colon - i));
            if (colon + 1 + n > text.size())
                throw fail();
            out.emplace_back(text.substr(colon + 1, n));
            i = colon + 1 + n;
        }
        else
            throw fail();
    }
    if (out.size() != t.key.size())
        throw fail();
    return out;
}

// 256-bit sum (mod 2^256) of SHA-256 digests: a multiset hash. It does not
// depend on row order, so each engine reads a table in its own cheapest
// order (SQLite's is bytewise, PostgreSQL's primary-key index follows the
// database's collation; sorting PostgreSQL bytewise would cost a full sort
// per page). Any changed, missing or extra row changes the sum.
class digest_sum
{
public:
    void add(std::string const& data)
    {
        unsigned char d[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        EVP_Digest(data.data(), data.size(), d, &n, EVP_sha256(), nullptr);
        unsigned carry = 0;
        for (int i = 31; i >= 0; --i)
        {
            unsigned const v = unsigned(sum_[i]) + d[i] + carry;
            sum_[i] = static_cast<unsigned char>(v);
            carry = v >> 8;
        }
    }
    std::string hex() const
    {
        std::string out;
        for (auto b : sum_)
            fmt::format_to(std::back_inserter(out), "{:02x}", b);
        return out;
    }

private:
    std::array<unsigned char, 32> sum_{};
};

struct digest
{
    std::int64_t rows = 0;
    std::string sha256;
};

// Count and multiset SHA-256 of every row of @p t (only @p columns). SQLite
// steps through one scan; libpq buffers a whole result in memory, so
// PostgreSQL reads keyset pages on the primary key (its index order).
digest table_digest(storage::database& db, table_spec const& t,
                    std::vector<std::size_t> const& columns)
{
    bool const pg = db.is_postgres();
    constexpr std::int64_t page = 10000;
    std::string select = "SELECT ", key, params;
    for (std::size_t i = 0; i < columns.size(); ++i)
        select += (i ? ", " : "") + quoted(t.columns[columns[i]].name);
    // The key columns ride along at the end to carry the cursor.
    for (auto k : t.key)
        select += ", " + quoted(t.columns[k].name);
    select += " FROM " + quoted(t.name);
    for (std::size_t i = 0; i < t.key.size(); ++i)
    {
        key += (i ? ", " : "") + quoted(t.columns[t.key[i]].name);
        params += (i ? ", ?" : "?") + std::to_string(i + 2);
    }
    auto const first_sql = select + " ORDER BY " + key + " LIMIT ?1";
    auto const next_sql =
        select + " WHERE (" + key + ") > (" + params + ") ORDER BY " + key + " LIMIT ?1";

    digest d;
    digest_sum sum;
    std::string row;
    std::optional<std::vector<value>> last;
    for (;;)
    {
        auto& q = db.prepare(!pg ? select : last ? next_sql : first_sql);
        if (pg)
            q.bind(1, page);
        if (last)
            for (std::size_t i = 0; i < last->size(); ++i)
                bind_value(q, static_cast<int>(i + 2), (*last)[i]);
        std::int64_t seen = 0;
        std::vector<value> key_values;
        while (q.executeStep())
        {
            ++seen;
            row.clear();
            for (std::size_t i = 0; i < columns.size(); ++i)
                append_value(row, read_value(q, static_cast<int>(i), t.columns[columns[i]].k));
            sum.add(row);
            if (pg && seen == page)
            {
                key_values.clear();
                for (std::size_t i = 0; i < t.key.size(); ++i)
                    key_values.push_back(
                        read_value(q, static_cast<int>(columns.size() + i), t.columns[t.key[i]].k));
            }
        }
        q.reset();
        d.rows += seen;
        if (!pg || seen < page)
            break;
        last = std::move(key_values);
    }
    d.sha256 = sum.hex();
    return d;
}

std::vector<std::size_t> all_columns(table_spec const& t)
{
    std::vector<std::size_t> out(t.columns.size());
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = i;
    return out;
}

std::int64_t count_rows(storage::database& db, std::string const& table)
{
    auto& q = db.prepare("SELECT count(*) FROM " + quoted(table));
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

constexpr char const* progress_table = "copy_progress";

struct progress_row
{
    bool exists = false;
    std::optional<std::string> last_key;
    std::int64_t rows_copied = 0;
    bool done = false;
};

progress_row read_progress(storage::database& target, std::string const& table)
{
    progress_row p;
    auto& q = target.prepare(
        "SELECT last_key, rows_copied, done FROM copy_progress WHERE table_name = ?");
    q.bind(1, table);
    if (q.executeStep())
    {
        p.exists = true;
        if (!q.getColumn(0).isNull())
            p.last_key = q.getColumn(0).getString();
        p.rows_copied = q.getColumn(1).getInt64();
        p.done = q.getColumn(2).getInt() != 0;
    }
    q.reset();
    return p;
}

// The multi-row INSERT for @p rows rows of @p t. PostgreSQL takes at most
// 65535 parameters per statement; callers keep rows * columns below that.
std::string insert_sql(table_spec const& t, std::size_t rows)
{
    std::string sql = "INSERT INTO " + quoted(t.name) + "(";
    for (std::size_t c = 0; c < t.columns.size(); ++c)
        sql += (c ? ", " : "") + quoted(t.columns[c].name);
    sql += ") VALUES ";
    int n = 0;
    for (std::size_t r = 0; r < rows; ++r)
    {
        sql += r ? ",(" : "(";
        for (std::size_t c = 0; c < t.columns.size(); ++c)
            sql += (c ? ",?" : "?") + std::to_string(++n);
        sql += ')';
    }
    // A row already there can only be one this copy inserted (the target
    // started empty), committed with a batch whose checkpoint was lost: never
    // the case when batch and checkpoint commit together, but cheap insurance.
    return sql + " ON CONFLICT DO NOTHING";
}

// The keyset query on the source: the next ?1 rows, after the key ?2, ?3… when @p after.
std::string select_sql(table_spec const& t, bool after)
{
    std::string cols, key;
    for (std::size_t c = 0; c < t.columns.size(); ++c)
        cols += (c ? ", " : "") + quoted(t.columns[c].name);
    for (std::size_t i = 0; i < t.key.size(); ++i)
        key += (i ? ", " : "") + quoted(t.columns[t.key[i]].name);
    std::string sql = "SELECT " + cols + " FROM " + quoted(t.name);
    if (after)
    {
        std::string params;
        for (std::size_t i = 0; i < t.key.size(); ++i)
            params += (i ? ", ?" : "?") + std::to_string(i + 2);
        sql += " WHERE (" + key + ") > (" + params + ")";
    }
    return sql + " ORDER BY " + key + " LIMIT ?1";
}

// Copies the rest of one table; returns rows inserted by this run.
std::int64_t copy_table(storage::database& source, storage::database& target, table_spec const& t,
                        std::string const& source_location, copy_options const& options,
                        bool& resumed)
{
    auto progress = read_progress(target, t.name);
    resumed = progress.exists && progress.rows_copied > 0;
    if (progress.done)
        return 0;
    auto const total = count_rows(source, t.name);
    std::optional<std::vector<value>> last;
    if (progress.last_key)
        last = decode_key(*progress.last_key, t);

    auto const batch = std::max<std::size_t>(1, options.batch_size);
    auto const ncols = t.columns.size();
    std::size_t const rows_per_insert =
        std::max<std::size_t>(1, std::min<std::size_t>(1000, 65535 / ncols));
    std::vector<std::vector<value>> rows;
    std::int64_t inserted = 0;
    auto last_log = clock::now();
    for (;;)
    {
        rows.clear();
        {
            auto& q = source.prepare(select_sql(t, last.has_value()));
            q.bind(1, static_cast<std::int64_t>(batch));
            if (last)
                for (std::size_t i = 0; i < last->size(); ++i)
                    bind_value(q, static_cast<int>(i + 2), (*last)[i]);
            while (q.executeStep())
            {
                std::vector<value> row;
                row.reserve(ncols);
                for (std::size_t c = 0; c < ncols; ++c)
                    row.push_back(read_value(q, static_cast<int>(c), t.columns[c].k));
                rows.push_back(std::move(row));
            }
            q.reset();
        }
        bool const done = rows.size() < batch;

        storage::transaction tx(target);
        for (std::size_t start = 0; start < rows.size(); start += rows_per_insert)
        {
            auto const n = std::min(rows_per_insert, rows.size() - start);
            auto& ins = target.prepare(insert_sql(t, n));
            int p = 0;
            for (std::size_t r = start; r < start + n; ++r)
                for (auto const& v : rows[r])
                    bind_value(ins, ++p, v);
            inserted += ins.exec();
        }
        if (!rows.empty())
        {
            std::vector<value> key;
            for (auto i : t.key)
                key.push_back(rows.back()[i]);
            last = std::move(key);
        }
        progress.rows_copied += static_cast<std::int64_t>(rows.size());
        // The checkpoint commits with the rows: a kill loses both or neither.
        auto& up = target.prepare("INSERT INTO copy_progress(table_name, source, last_key, "
                                  "rows_copied, done, updated_at) "
                                  "VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(table_name) DO "
                                  "UPDATE SET last_key = excluded.last_key, "
                                  "rows_copied = excluded.rows_copied, done = excluded.done, "
                                  "updated_at = excluded.updated_at");
        up.bind(1, t.name);
        up.bind(2, source_location);
        if (last)
            up.bind(3, encode_key(*last));
        else
            up.bind(3);
        up.bind(4, progress.rows_copied);
        up.bind(5, done ? 1 : 0);
        up.bind(6, core::now_ms());
        up.exec();
        tx.commit();

        if (options.on_progress)
            options.on_progress(t.name, progress.rows_copied, total);
        if (done || clock::now() - last_log > std::chrono::seconds(2))
        {
            last_log = clock::now();
            spdlog::info("copy table={} copied={} total={} done={}", t.name, progress.rows_copied,
                         total, done);
        }
        if (done)
            break;
    }
    return inserted;
}

// The schema_migrations history of the source onto the target's own rows
// (written by apply_schema with the target dialect's checksums).
void copy_schema_history(storage::database& source, storage::database& target)
{
    auto& q = source.prepare(
        "SELECT version, applied_at, skipped FROM schema_migrations ORDER BY version");
    storage::transaction tx(target);
    while (q.executeStep())
    {
        auto& up = target.prepare(
            "UPDATE schema_migrations SET applied_at = ?2, skipped = ?3 WHERE version = ?1");
        up.bind(1, q.getColumn(0).getInt64());
        up.bind(2, q.getColumn(1).getInt64());
        up.bind(3, q.getColumn(2).getInt64());
        up.exec();
    }
    q.reset();
    tx.commit();
}

} // namespace

bool copy_report::ok() const
{
    return std::all_of(tables.begin(), tables.end(), [](auto const& t) { return t.ok(); });
}

std::string copy_report::json(std::string const& source, std::string const& target) const
{
    std::string out =
        fmt::format("{{\"command\":\"migrate copy\",\"source\":{},\"target\":{},\"source_kind\":{},"
                    "\"schema_applied\":[",
                    core::json_string(source), core::json_string(redact_location(target)),
                    core::json_string(source_kind));
    for (std::size_t i = 0; i < schema_applied.size(); ++i)
        out += fmt::format("{}{}", i ? "," : "", schema_applied[i]);
    out += "],\"tables\":[";
    std::int64_t rows = 0, copied = 0;
    for (std::size_t i = 0; i < tables.size(); ++i)
    {
        auto const& t = tables[i];
        rows += t.source_rows;
        copied += t.copied_now;
        out += fmt::format(
            "{}{{\"table\":{},\"source_rows\":{},\"target_rows\":{},\"copied\":{},\"resumed\":{},"
            "\"source_sha256\":\"{}\",\"target_sha256\":\"{}\",\"ok\":{}}}",
            i ? "," : "", core::json_string(t.table), t.source_rows, t.target_rows, t.copied_now,
            t.resumed, t.source_sha256, t.target_sha256, t.ok());
    }
    out += fmt::format(
        "],\"rows\":{},\"copied\":{},\"copy_seconds\":{:.3f},\"verify_seconds\":{:.3f},\"ok\":{}}}",
        rows, copied, copy_seconds, verify_seconds, ok());
    return out;
}

std::string redact_location(std::string const& location)
{
    auto const scheme = location.find("://");
    auto const at = location.find('@');
    if (scheme == std::string::npos || at == std::string::npos)
        return location;
    auto const colon = location.find(':', scheme + 3);
    if (colon == std::string::npos || colon > at)
        return location;
    return location.substr(0, colon) + ":***" + location.substr(at);
}

copy_report copy_database(storage::database& source, storage::database& target,
                          copy_options const& options)
{
    if (source.is_postgres())
        throw migration_error("migrate copy reads a SQLite source (--from sqlite:PATH)");
    if (!target.is_postgres())
        throw migration_error("migrate copy writes a PostgreSQL target (--to postgres://…)");

    copy_report report;
    auto const source_kind = detect_kind(source);
    report.source_kind = to_string(source_kind);
    if (source_kind == database_kind::foreign)
        throw migration_error(
            "the source has tables chatstream does not recognise; refusing to copy it");
    if (source_kind == database_kind::empty)
        throw migration_error("the source database is empty; nothing to copy");
    check_schema_checksums(
        source); // a source newer than this binary has a schema we cannot reproduce

    // Progress rows name the source file, so a re-run resumes only its own copy.
    auto const source_id = std::filesystem::weakly_canonical(source.path()).string();
    // The target is empty, or a copy of this very source in progress.
    if (!target.has_table(progress_table))
    {
        if (detect_kind(target) != database_kind::empty)
            throw migration_error(
                "the target already has tables (and no copy_progress of a previous run); "
                "migrate copy needs an empty PostgreSQL database or schema");
        target.exec("CREATE TABLE copy_progress(table_name TEXT PRIMARY KEY, source TEXT NOT NULL, "
                    "last_key TEXT, "
                    "rows_copied BIGINT NOT NULL DEFAULT 0, done INTEGER NOT NULL DEFAULT 0, "
                    "updated_at BIGINT NOT NULL)");
    }
    else
    {
        auto& q = target.prepare("SELECT DISTINCT source FROM copy_progress WHERE source <> ?");
        q.bind(1, source_id);
        std::optional<std::string> other;
        if (q.executeStep())
            other = q.getColumn(0).getString();
        q.reset();
        if (other)
            throw migration_error("the target holds a copy in progress of another source (" +
                                  *other + "); use an empty target");
    }

    auto const started = clock::now();
    bool const legacy_shape = source.has_table("messages") && storage::has_legacy_columns(source);
    if (legacy_shape && !target.has_table("messages"))
    {
        storage::transaction tx(target);
        target.exec(legacy_schema_sql(storage::dialect::postgres));
        // The seed's messages may carry reasoning columns beyond docs/design.md §5
        // (§9); the target gets those the source has, and 0007 the rest.
        static constexpr std::pair<char const*, char const*> seed_columns[] = {
            {"reasoning", "TEXT"},
            {"partial_reasoning", "TEXT"},
            {"reasoning_tokens", "BIGINT"},
            {"thinking_started_at", "BIGINT"},
            {"thinking_completed_at", "BIGINT"}};
        for (auto const& [column, type] : seed_columns)
            if (source.has_column("messages", column))
                target.exec(std::string("ALTER TABLE messages ADD COLUMN ") + column + " " + type);
        tx.commit();
    }
    // A managed source's tables exist before its rows arrive; an unmigrated
    // legacy source gets the schema migrations after them, as `migrate up`
    // runs them on a populated legacy database (0001 counts messages).
    if (source_kind == database_kind::managed)
        report.schema_applied = apply_schema(target);

    std::vector<table_spec> tables;
    for (auto const& name : tables_in_fk_order(source))
    {
        auto t = read_table(source, name);
        if (!target.has_table(name))
            throw migration_error("the target has no table " + name +
                                  " (the source's schema is not chatstream's?)");
        for (auto const& c : t.columns)
            if (!target.has_column(name, c.name))
                throw migration_error("the target's " + name + " has no column " + c.name);
        tables.push_back(std::move(t));
    }
    for (auto const& t : tables)
    {
        table_copy_report r;
        r.table = t.name;
        r.copied_now = copy_table(source, target, t, source_id, options, r.resumed);
        report.tables.push_back(std::move(r));
    }
    // The target's sources triggers (0008) counted every copied citation
    // again on top of the copied access_count: count them once, as the
    // source does.
    if (target.has_table("source_metadata") && source.has_table("source_metadata"))
        target.exec("UPDATE source_metadata SET access_count = (SELECT count(*) FROM sources s "
                    "WHERE s.url_hash = source_metadata.url_hash)");
    if (source_kind == database_kind::legacy)
        report.schema_applied = apply_schema(target);
    if (source.has_table("schema_migrations"))
        copy_schema_history(source, target);
    report.copy_seconds = std::chrono::duration<double>(clock::now() - started).count();

    auto const verify_started = clock::now();
    for (std::size_t i = 0; i < tables.size(); ++i)
    {
        auto const cols = all_columns(tables[i]);
        auto const s = table_digest(source, tables[i], cols);
        auto const d = table_digest(target, tables[i], cols);
        auto& r = report.tables[i];
        r.source_rows = s.rows;
        r.source_sha256 = s.sha256;
        r.target_rows = d.rows;
        r.target_sha256 = d.sha256;
    }
    if (source.has_table("schema_migrations"))
    {
        // The history without the checksum column, which is per dialect.
        table_spec t{"schema_migrations",
                     {{"version", kind::integer, 1},
                      {"name", kind::text, 0},
                      {"applied_at", kind::integer, 0},
                      {"skipped", kind::integer, 0}},
                     {0}};
        auto const cols = all_columns(t);
        auto const s = table_digest(source, t, cols);
        auto const d = table_digest(target, t, cols);
        report.tables.push_back({t.name, s.rows, d.rows, 0, false, s.sha256, d.sha256});
    }
    report.verify_seconds = std::chrono::duration<double>(clock::now() - verify_started).count();
    return report;
}

} // namespace chatstream::migrations
