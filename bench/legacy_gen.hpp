#pragma once
/// @file legacy_gen.hpp
/// Deterministic generator of legacy databases (docs/design.md §5 schema: JSON
/// arrays inside message rows), for the migration tests and benchmark.
///
/// The same options and seed always produce the same bytes. With
/// `edge_cases`, the first conversation holds one message per edge case of
/// issue 4 (emoji/CJK text so UTF-16, UTF-8 and code-point offsets differ;
/// NULL vs []; duplicate ids; ids in both arrays; missing textPosition;
/// 200 KB arguments; malformed JSON; orphan message), the rest is a seeded
/// random mix.
#include "chatstream/storage/database.hpp"

#include <cstdint>
#include <string>

namespace chatstream::bench
{

struct legacy_gen_options
{
    std::int64_t messages = 834;
    std::uint64_t seed = 1;
    std::int64_t messages_per_conversation = 24;
    std::int64_t conversations_per_user = 8;
    int tool_call_percent = 15;  ///< of assistant messages
    int partial_percent = 3;     ///< of assistant messages: left generating with partial calls
    int attachment_percent = 8;  ///< of user messages
    int malformed_per_mille = 2; ///< of all messages
    bool edge_cases = true;
    /// Longer texts, arguments and results (~1.2 KB per message); see `heavy_profile`.
    bool heavy = false;
};

/// The heavy profile of issue 21: ~0.6 normalized rows per message (20 % of
/// user messages with 1-2 attachments, 35 % of assistant messages with 1-4
/// tool calls), longer arguments and results, ~1.2 KB per legacy message.
inline legacy_gen_options heavy_profile(std::int64_t messages, std::uint64_t seed = 1)
{
    legacy_gen_options o;
    o.messages = messages;
    o.seed = seed;
    o.tool_call_percent = 35;
    o.attachment_percent = 20;
    o.heavy = true;
    return o;
}

struct legacy_gen_stats
{
    std::int64_t messages = 0;
    std::int64_t conversations = 0;
    std::int64_t users = 0;
    std::int64_t malformed = 0; ///< messages that 001 must quarantine
    std::int64_t with_tool_calls = 0;
    std::int64_t with_attachments = 0;
};

/// The legacy schema of docs/design.md §5: verbatim for SQLite; for PostgreSQL
/// the same tables with BIGINT times and TEXT JSON columns.
char const* legacy_schema_sql(storage::dialect d = storage::dialect::sqlite);

/// Creates the legacy database at @p location (a SQLite path, replacing the
/// file, or a `postgres://` URI, replacing the chatstream tables of its
/// schema). The same options give the same rows on both backends.
/// @throws std::exception (storage errors)
legacy_gen_stats generate_legacy_db(std::string const& location, legacy_gen_options const& options);

} // namespace chatstream::bench
