#pragma once
/// @file sources.hpp
/// Sources and citations (docs/design.md §9): one `source_metadata` row per
/// normalized URL, one `sources` row per citation of a message.
///
/// Writes run in writer jobs, reads in read-pool jobs, like repositories.hpp.
/// `access_count` is kept by triggers (migrations/sql/0008_sources.sql), so
/// no function here touches it.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace chatstream::storage
{

/// The §9 normalization: lowercase scheme and host, no fragment, no
/// default port, no `utm_*` query parameters, the path's case kept (an
/// empty path is `/`). Only absolute http and https URLs with a host are
/// sources: anything else gives nullopt.
std::optional<std::string> normalize_source_url(std::string_view url);

/// SHA-256 hex of a normalized URL: the `url_hash` key.
std::string source_url_hash(std::string_view normalized_url);

/// The host of a normalized URL without a leading `www.`.
std::string source_domain(std::string_view normalized_url);

struct source_row
{
    std::string id;
    std::string message_id;
    std::string conversation_id;
    std::string user_id;
    std::int64_t position = 0; ///< 1-based citation number within the message
    std::string url_hash;
    std::string url; ///< as cited (the metadata row holds the normalized one)
    std::optional<std::string> title;
    std::optional<std::string> snippet;
    std::optional<std::string> published_date;
    std::string provider; ///< upstream | tool | legacy
    bool is_partial = true;
    std::int64_t created_at = 0;
};

struct source_metadata_row
{
    std::string url_hash;
    std::string url; ///< normalized
    std::string domain;
    std::optional<std::string> og_title;
    std::optional<std::string> og_description;
    std::optional<std::string> og_image;
    std::optional<std::string> favicon;
    std::optional<std::int64_t> fetched_at;
    std::optional<std::string> error;
    std::int64_t access_count = 0;
};

namespace sources
{

/// The columns of `sources`, in the order bind() and read() use.
inline constexpr char const source_columns[] =
    "id, message_id, conversation_id, user_id, position, url_hash, url, title, snippet, "
    "published_date, provider, is_partial, created_at";
inline constexpr int source_width = 13;
/// The columns of `source_metadata` without access_count (the triggers' own).
inline constexpr char const metadata_columns[] =
    "url_hash, url, domain, og_title, og_description, og_image, favicon, fetched_at, error";
inline constexpr int metadata_width = 9;

/// Binds @p r to parameters `first + 1` .. in place (@p r outlives exec()).
void bind(statement& s, int first, source_row const& r);
void bind(statement& s, int first, source_metadata_row const& r);
source_row read(statement& q, int first = 0);
source_metadata_row read_metadata(statement& q, int first = 0);

/// Ensures the metadata row of @p r's URL exists (created empty: url,
/// domain), then inserts the citation; a message citing the same URL again,
/// or the same position again, is a no-op (idempotent, keyed by
/// (message_id, url_hash) and (message_id, position)).
/// @return true when the citation row was inserted.
bool insert(database& db, source_row const& r, std::string const& normalized_url);

/// Whether the metadata of @p url_hash was never fetched (no fetched_at).
bool needs_enrichment(database& db, std::string const& url_hash);

/// Marks every citation of the message final (is_partial = 0).
void finalize(database& db, std::string const& message_id);

/// Who cites a URL: the watchers to tell when its metadata changes.
struct citer
{
    std::string user_id;
    std::string conversation_id;
};
/// Stores an enrichment result (or its error) on the metadata row.
/// @return the (user, conversation) pairs whose messages cite it.
std::vector<citer> set_metadata(database& db, source_metadata_row const& m);

struct with_metadata
{
    source_row source;
    std::optional<source_metadata_row> metadata;
};
/// The citations of a message the caller owns, in position order, with
/// their metadata; empty for a message that is not theirs.
std::vector<with_metadata> list_for_message(database& db, std::string const& user_id,
                                            std::string const& message_id);
/// The citation rows of a message (not scoped: the caller checked).
std::vector<source_row> rows_for_message(database& db, std::string const& message_id);

} // namespace sources

} // namespace chatstream::storage
