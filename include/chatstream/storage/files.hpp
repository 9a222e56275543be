#pragma once
/// @file files.hpp
/// Rows of uploaded files (`files`, `uploads`; migrations/sql/0003_files.sql)
/// and the ownership rules of issue 11. Same conventions as repositories.hpp:
/// writes run in writer jobs, reads on read-pool connections, and every
/// client-reachable read takes the caller's user id.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::storage::files
{

struct file_row
{
    std::string storage_id; ///< hex SHA-256 of the bytes
    std::int64_t size = 0;
    std::string mime_type;
    std::optional<std::string> metadata; ///< canonical JSON object text
    std::int64_t created_at = 0;
};

/// Records that @p user_id uploaded blob @p f (named @p name by that user):
/// inserts the `files` row unless the blob is known, and inserts or
/// refreshes (uploaded_at, name, mime_type) the user's `uploads` row.
void record_upload(database& db, file_row const& f, std::string const& user_id,
                   std::string const& name, std::int64_t now);

/// A file the caller may read, with the name they know it by.
struct readable_file
{
    file_row file;
    std::string name;
};

/// The file, when @p user_id uploaded it or owns a message with an
/// attachment referencing it; std::nullopt otherwise (or when unknown).
std::optional<readable_file> find_readable(database& db, std::string const& user_id,
                                           std::string const& storage_id);

/// What a new attachment row records about a file: what chatstream stored,
/// never what the client claims (issue 20, finding 9).
struct attachable_file
{
    std::string mime_type;               ///< the caller's upload type, else the blob's first one
    std::int64_t size = 0;               ///< the blob's size
    std::optional<std::string> metadata; ///< the blob's (image width/height), canonical JSON
    std::string name; ///< the caller's upload name, else their earliest attachment's
    /// Set only for an id chatstream never stored (a legacy attachment the
    /// caller already owns): that row's type. Otherwise the type follows
    /// from mime_type (core::attachment_type).
    std::optional<std::string> type;
};

/// The file as @p user_id may attach it to a new message, when they may:
/// they uploaded it (and it was not collected since), or one of their
/// messages already references it (re-attaching; legacy ids without a
/// `files` row take the values of that earliest attachment row).
/// std::nullopt otherwise.
std::optional<attachable_file> find_attachable(database& db, std::string const& user_id,
                                               std::string const& storage_id);

/// find_attachable(db, user_id, storage_id).has_value().
bool can_attach(database& db, std::string const& user_id, std::string const& storage_id);

/// Garbage collection: deletes the rows of at most @p limit files that no
/// attachment references and that nobody uploaded at or after @p cutoff_ms
/// (their `uploads` rows go with them), and returns their ids. The caller
/// unlinks the blobs in the same writer job (blob_store::remove).
std::vector<std::string> collect_garbage(database& db, std::int64_t cutoff_ms, std::size_t limit);

} // namespace chatstream::storage::files
