#pragma once
/// @file schema_migrator.hpp
/// Versioned schema migrations (`migrations/sql/NNNN_name[.legacy].sql` for
/// SQLite, the same names under `migrations/sql/postgres/` for PostgreSQL),
/// embedded in the binary at build time.
///
/// Each file is applied in its own transaction and recorded in
/// `schema_migrations(version, name, checksum, applied_at)` with the SHA-256
/// of its text. A file whose name ends in `.legacy.sql` only runs on a
/// database that was detected as legacy (docs/design.md §5); on other databases it
/// is recorded without running, so it is never considered again.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace chatstream::migrations
{

/// What a database looks like before `migrate up`.
enum class database_kind
{
    empty,   ///< no tables: a new chatstream database
    legacy,  ///< messages with JSON array columns and no schema_migrations
    managed, ///< has schema_migrations: ours
    foreign  ///< tables we do not recognise: refuse to touch
};

database_kind detect_kind(storage::database& db);
char const* to_string(database_kind k);

struct schema_file
{
    int version = 0;
    std::string name; ///< file name, e.g. 0002_normalized_tables.sql
    std::string sql;
    std::string checksum; ///< hex SHA-256 of sql
    bool legacy_only = false;
};

/// The embedded files of @p d in version order.
std::vector<schema_file> const& schema_files(storage::dialect d = storage::dialect::sqlite);

struct schema_status
{
    int version = 0;
    std::string name;
    bool applied = false;
    std::optional<std::int64_t> applied_at;
};

/// Thrown when an applied file's checksum differs from the embedded one
/// (someone edited a migration after it shipped) or the database is foreign.
class schema_error : public std::runtime_error
{
public:
    using std::runtime_error::runtime_error;
};

/// Applies every pending schema migration. Idempotent.
/// @return the versions applied by this call.
/// @throws schema_error, or the backend's error
std::vector<int> apply_schema(storage::database& db);

/// Every embedded file with whether/when it was applied.
std::vector<schema_status> read_schema_status(storage::database& db);

/// Verifies checksums of applied files without applying anything.
/// @throws schema_error on mismatch.
void check_schema_checksums(storage::database& db);

namespace detail
{
std::vector<std::pair<std::string, std::string>> const& embedded_sql_files(storage::dialect d);
std::vector<schema_file>
parse_schema_files(std::vector<std::pair<std::string, std::string>> const& files);
std::vector<int> apply_schema_files(storage::database& db, std::vector<schema_file> const& files);
/// @p sql with each line `ALTER TABLE t ADD COLUMN IF NOT EXISTS c ...`
/// dropped when @p db has t.c, else without `IF NOT EXISTS` (SQLite lacks it).
std::string sqlite_add_columns_if_missing(storage::database& db, std::string const& sql);
} // namespace detail

/// The legacy schema (docs/design.md §5), the input of data migration 001:
/// verbatim for SQLite; for PostgreSQL the same tables with BIGINT times and
/// TEXT JSON columns. Used by the legacy generator and by `migrate copy`
/// to give a PostgreSQL target a legacy source's shape.
char const* legacy_schema_sql(storage::dialect d);

} // namespace chatstream::migrations
