#include "chatstream/migrations/schema_migrator.hpp"

#include "chatstream/core/clock.hpp"

#include <openssl/sha.h>

#include <algorithm>
#include <cstdio>

namespace chatstream::migrations
{
namespace
{

std::string sha256_hex(std::string const& text)
{
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<unsigned char const*>(text.data()), text.size(), digest);
    std::string hex;
    hex.reserve(2 * sizeof digest);
    char buf[3];
    for (auto b : digest)
    {
        std::snprintf(buf, sizeof buf, "%02x", b);
        hex += buf;
    }
    return hex;
}

void ensure_bookkeeping(storage::database& db)
{
    db.exec(db.is_postgres()
                ? "CREATE TABLE IF NOT EXISTS schema_migrations("
                  "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
                  "applied_at BIGINT NOT NULL, skipped INTEGER NOT NULL DEFAULT 0)"
                : "CREATE TABLE IF NOT EXISTS schema_migrations("
                  "version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, "
                  "applied_at INTEGER NOT NULL, skipped INTEGER NOT NULL DEFAULT 0)");
}

/// Nodes sharing a PostgreSQL database may all run `migrate up` at start:
/// a session advisory lock makes the second wait and then find nothing to do.
class schema_lock
{
public:
    explicit schema_lock(storage::database& db) : db_(db)
    {
        if (db_.is_postgres())
            db_.exec("SELECT pg_advisory_lock(7261736)");
    }
    ~schema_lock()
    {
        if (db_.is_postgres())
            db_.try_exec("SELECT pg_advisory_unlock(7261736)");
    }
    schema_lock(schema_lock const&) = delete;
    schema_lock& operator=(schema_lock const&) = delete;

private:
    storage::database& db_;
};

} // namespace

std::string detail::sqlite_add_columns_if_missing(storage::database& db, std::string const& sql)
{
    // SQLite has no `ADD COLUMN IF NOT EXISTS`: a line holding one is
    // dropped when the column exists and loses the clause otherwise.
    static constexpr std::string_view prefix = "ALTER TABLE ";
    static constexpr std::string_view clause = " ADD COLUMN IF NOT EXISTS ";
    std::string out;
    std::size_t pos = 0;
    while (pos < sql.size())
    {
        auto end = sql.find('\n', pos);
        if (end == std::string::npos)
            end = sql.size();
        std::string line = sql.substr(pos, end - pos);
        pos = end + 1;
        auto const at = line.find(clause);
        if (line.starts_with(prefix) && at != std::string::npos)
        {
            auto const table = line.substr(prefix.size(), at - prefix.size());
            auto const rest = line.substr(at + clause.size());
            auto const column = rest.substr(0, rest.find(' '));
            if (db.has_column(table, column))
                continue;
            std::string rewritten(prefix);
            rewritten += table;
            rewritten += " ADD COLUMN ";
            rewritten += rest;
            line = std::move(rewritten);
        }
        out += line;
        out += '\n';
    }
    return out;
}

database_kind detect_kind(storage::database& db)
{
    // copy_progress is `migrate copy`'s own bookkeeping: a target it created
    // first is still "empty" (or legacy) to the schema runner.
    if (db.has_table("schema_migrations"))
        return database_kind::managed;
    auto& q = db.prepare(
        db.is_postgres()
            ? "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
              "AND tablename <> 'copy_progress'"
            : "SELECT count(*) FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
              "AND name <> 'copy_progress'");
    q.executeStep();
    auto const tables = q.getColumn(0).getInt();
    q.reset();
    if (tables == 0)
        return database_kind::empty;
    if (db.has_table("messages") && db.has_column("messages", "tool_calls") &&
        db.has_column("messages", "partial_tool_calls") && db.has_column("messages", "attachments"))
        return database_kind::legacy;
    return database_kind::foreign;
}

char const* to_string(database_kind k)
{
    switch (k)
    {
    case database_kind::empty:
        return "empty";
    case database_kind::legacy:
        return "legacy";
    case database_kind::managed:
        return "managed";
    case database_kind::foreign:
        return "foreign";
    }
    return "?";
}

std::vector<schema_file>
detail::parse_schema_files(std::vector<std::pair<std::string, std::string>> const& files)
{
    std::vector<schema_file> out;
    for (auto const& [name, sql] : files)
    {
        schema_file f;
        f.name = name;
        f.sql = sql;
        f.version = std::stoi(name.substr(0, name.find('_')));
        f.checksum = sha256_hex(sql);
        f.legacy_only = name.size() > 11 && name.ends_with(".legacy.sql");
        out.push_back(std::move(f));
    }
    std::sort(out.begin(), out.end(),
              [](auto const& a, auto const& b) { return a.version < b.version; });
    for (std::size_t i = 1; i < out.size(); ++i)
        if (out[i].version == out[i - 1].version)
            throw schema_error("duplicate schema version " + std::to_string(out[i].version));
    return out;
}

std::vector<schema_file> const& schema_files(storage::dialect d)
{
    static std::vector<schema_file> const sqlite =
        detail::parse_schema_files(detail::embedded_sql_files(storage::dialect::sqlite));
    static std::vector<schema_file> const postgres =
        detail::parse_schema_files(detail::embedded_sql_files(storage::dialect::postgres));
    return d == storage::dialect::postgres ? postgres : sqlite;
}

std::vector<int> detail::apply_schema_files(storage::database& db,
                                            std::vector<schema_file> const& files)
{
    schema_lock lock(db);
    auto const kind = detect_kind(db);
    if (kind == database_kind::foreign)
        throw schema_error(
            "database has tables chatstream does not recognise; refusing to migrate it");
    bool const legacy = kind == database_kind::legacy ||
                        (kind == database_kind::managed && db.has_column("messages", "tool_calls"));

    std::vector<int> applied;
    {
        storage::transaction tx(db);
        ensure_bookkeeping(db);
        tx.commit();
    }
    check_schema_checksums(db);
    for (auto const& f : files)
    {
        storage::transaction tx(db);
        auto& q = db.prepare("SELECT 1 FROM schema_migrations WHERE version = ?");
        q.bind(1, f.version);
        bool const done = q.executeStep();
        q.reset();
        if (done)
            continue;
        bool const skip = f.legacy_only && !legacy;
        if (!skip)
            db.exec(db.is_postgres() ? f.sql : detail::sqlite_add_columns_if_missing(db, f.sql));
        auto& ins = db.prepare(
            "INSERT INTO schema_migrations(version, name, checksum, applied_at, skipped) "
            "VALUES(?,?,?,?,?)");
        ins.bind(1, f.version);
        ins.bind(2, f.name);
        ins.bind(3, f.checksum);
        ins.bind(4, core::now_ms());
        ins.bind(5, skip ? 1 : 0);
        ins.exec();
        tx.commit();
        applied.push_back(f.version);
    }
    return applied;
}

std::vector<int> apply_schema(storage::database& db)
{
    return detail::apply_schema_files(db, schema_files(db.dialect()));
}

void check_schema_checksums(storage::database& db)
{
    if (!db.has_table("schema_migrations"))
        return;
    auto const& files = schema_files(db.dialect());
    auto& q = db.prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
    std::string problem;
    while (q.executeStep())
    {
        auto const version = q.getColumn(0).getInt();
        auto const checksum = q.getColumn(2).getString();
        auto it = std::find_if(files.begin(), files.end(),
                               [&](auto const& f) { return f.version == version; });
        if (it == files.end())
            problem = "schema version " + std::to_string(version) + " (" +
                      q.getColumn(1).getString() +
                      ") is applied but unknown to this binary (database is newer)";
        else if (it->checksum != checksum)
            problem = "checksum of applied schema migration " + it->name +
                      " changed since it was applied; refusing to continue";
        if (!problem.empty())
            break;
    }
    q.reset();
    if (!problem.empty())
        throw schema_error(problem);
}

std::vector<schema_status> read_schema_status(storage::database& db)
{
    std::vector<schema_status> out;
    bool const has = db.has_table("schema_migrations");
    for (auto const& f : schema_files(db.dialect()))
    {
        schema_status s{f.version, f.name, false, std::nullopt};
        if (has)
        {
            auto& q = db.prepare("SELECT applied_at FROM schema_migrations WHERE version = ?");
            q.bind(1, f.version);
            if (q.executeStep())
            {
                s.applied = true;
                s.applied_at = q.getColumn(0).getInt64();
            }
            q.reset();
        }
        out.push_back(std::move(s));
    }
    return out;
}

// docs/design.md §5 verbatim; see schema_migrator.hpp.
char const* legacy_schema_sql(storage::dialect d)
{
    if (d == storage::dialect::postgres)
        // The same tables in PostgreSQL's types: BIGINT for the integer
        // (millisecond) times, TEXT for the JSON columns, as a legacy
        // database ported to PostgreSQL would have them.
        return R"sql(
CREATE TABLE users(id TEXT PRIMARY KEY, external_id TEXT UNIQUE, name TEXT, created_at BIGINT NOT NULL);
CREATE TABLE conversations(id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), title TEXT NOT NULL DEFAULT 'New Chat', model TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, last_message_at BIGINT);
CREATE TABLE messages(id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL REFERENCES users(id), role TEXT NOT NULL CHECK(role IN ('user','assistant','system')), content TEXT NOT NULL DEFAULT '', partial_content TEXT, status TEXT NOT NULL, model TEXT, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, attachments TEXT, tool_calls TEXT, partial_tool_calls TEXT);
CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);
)sql";
    return R"sql(
CREATE TABLE users(id TEXT PRIMARY KEY, external_id TEXT UNIQUE, name TEXT, created_at INTEGER NOT NULL);
CREATE TABLE conversations(id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), title TEXT NOT NULL DEFAULT 'New Chat', model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_message_at INTEGER);
CREATE TABLE messages(id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL REFERENCES users(id), role TEXT NOT NULL CHECK(role IN ('user','assistant','system')), content TEXT NOT NULL DEFAULT '', partial_content TEXT, status TEXT NOT NULL, model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, attachments TEXT, tool_calls TEXT, partial_tool_calls TEXT);
CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);
)sql";
}

} // namespace chatstream::migrations
