#pragma once
/// @file copy.hpp
/// `chatstream migrate copy`: moves a whole SQLite database (legacy or
/// current schema) into PostgreSQL, resumably, and proves the result equal.
///
/// 1. Shape: a target with a legacy source's legacy columns gets the legacy
///    tables (legacy_schema_sql); a schema-managed source gets
///    `apply_schema` first, an unmigrated legacy source after its rows are
///    in, so the target ends exactly as `migrate up` leaves a legacy
///    database (001/002 then run there).
/// 2. Rows: every table in foreign-key order, in keyset batches on its
///    primary key, multi-row `INSERT … ON CONFLICT DO NOTHING`. Each batch
///    commits with its `copy_progress` row (last key copied), so a re-run
///    after `kill -9` continues where the last commit left, never duplicates.
/// 3. Verify: per table, row count and a multiset SHA-256 (the sum mod
///    2^256 of the SHA-256 of each row's canonical serialization), computed
///    the same way on both sides; independent of row order, so neither
///    engine has to sort by the other's collation. `schema_migrations` is not copied (its
///    checksums are per dialect); its history (`applied_at`, `skipped`) is,
///    and is verified without the checksum column.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace chatstream::migrations
{

inline constexpr std::size_t default_copy_batch_size = 5000;

struct copy_options
{
    std::size_t batch_size = default_copy_batch_size; ///< source rows per target transaction
    /// Called after every committed batch: table, rows copied so far (this
    /// table, all runs), rows in the source table.
    std::function<void(std::string const&, std::int64_t, std::int64_t)> on_progress;
};

struct table_copy_report
{
    std::string table;
    std::int64_t source_rows = 0;
    std::int64_t target_rows = 0;
    std::int64_t copied_now = 0; ///< rows inserted by this run
    bool resumed = false;        ///< a previous run had copied part of it
    std::string source_sha256;
    std::string target_sha256;
    bool ok() const { return source_rows == target_rows && source_sha256 == target_sha256; }
};

struct copy_report
{
    std::string source_kind; ///< detect_kind of the source
    std::vector<int> schema_applied;
    std::vector<table_copy_report> tables;
    double copy_seconds = 0;
    double verify_seconds = 0;
    bool ok() const;
    /// One JSON object: the summary `migrate copy` prints.
    std::string json(std::string const& source, std::string const& target) const;
};

/// Copies @p source (SQLite) into @p target (PostgreSQL), then verifies.
/// @throws migration_error on a refusal (target not empty and not a copy in
/// progress of this source, unknown tables, non-PostgreSQL target)
/// @throws std::exception on database errors (the run is resumable)
copy_report copy_database(storage::database& source, storage::database& target,
                          copy_options const& options = {});

/// A libpq URI without its password, for output.
std::string redact_location(std::string const& location);

} // namespace chatstream::migrations
