#pragma once
// An independent statement of docs/design.md §5's rules for migration 001, in SQL
// (SQLite's JSON1 functions) instead of C++. The backfill, `verify` and the
// read fallback all call storage::legacy::convert, so expectations built with
// convert would agree with any bug in it; these are built without it.
//
// The legacy columns are copied into a scratch SQLite file first, so the same
// oracle serves the PostgreSQL runs.
#include "chatstream/storage/database.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::test
{

struct oracle_call
{
    std::string id;
    std::string arguments; ///< JSON text, compare as values (json_equal)
    std::optional<std::string> result;
    std::optional<std::int64_t> text_position;
    bool is_partial = false;
};

struct oracle_message
{
    bool accepted = true;                ///< false: 001 must quarantine it
    std::vector<oracle_call> tool_calls; ///< by id, byte order
    std::int64_t attachments = 0;
};

/// Two JSON texts are the same value (key order and spacing aside).
inline bool json_equal(std::string const& a, std::string const& b)
{
    boost::system::error_code ea, eb;
    auto va = boost::json::parse(a, ea);
    auto vb = boost::json::parse(b, eb);
    return !ea && !eb && va == vb;
}

namespace oracle_detail
{

// Each legacy column that holds something: NULL, '' and the JSON document
// `null` hold nothing.
inline constexpr char const* elements = R"(
WITH cols(id, col, doc) AS (
    SELECT id, 'attachments', attachments FROM legacy
    UNION ALL SELECT id, 'tool_calls', tool_calls FROM legacy
    UNION ALL SELECT id, 'partial_tool_calls', partial_tool_calls FROM legacy),
present AS (
    SELECT id, col, doc FROM cols
     WHERE doc IS NOT NULL AND doc <> '' AND NOT (json_valid(doc) AND json_type(doc) = 'null')),
elems AS (
    SELECT p.id, p.col, CAST(j.key AS INTEGER) AS idx, j.value AS v, j.type AS t
      FROM present p,
           json_each(CASE WHEN json_valid(p.doc) AND json_type(p.doc) = 'array' THEN p.doc ELSE '[]' END) j),
-- A message is refused whole: a column that is not a JSON array, an element
-- that is not an object, a required string missing, an embedded JSON string
-- that does not parse, a number that is not one, an unknown attachment type.
bad(id) AS (
    SELECT id FROM present WHERE NOT json_valid(doc) OR json_type(doc) <> 'array'
    UNION SELECT id FROM elems WHERE t <> 'object'
    UNION SELECT id FROM elems WHERE t = 'object' AND col <> 'attachments' AND (
           coalesce(json_type(v, '$.id'), '') <> 'text'
        OR coalesce(json_type(v, '$.name'), '') <> 'text'
        OR (json_type(v, '$.arguments') = 'text' AND json_extract(v, '$.arguments') <> ''
            AND NOT json_valid(json_extract(v, '$.arguments')))
        OR (json_type(v, '$.result') = 'text' AND json_extract(v, '$.result') <> ''
            AND NOT json_valid(json_extract(v, '$.result')))
        OR coalesce(json_type(v, '$.textPosition'), 'null') NOT IN ('null', 'integer', 'real')
        OR coalesce(json_type(v, '$.timestamp'), 'null') NOT IN ('null', 'integer', 'real'))
    UNION SELECT id FROM elems WHERE t = 'object' AND col = 'attachments' AND (
           coalesce(json_type(v, '$.type'), '') <> 'text'
        OR json_extract(v, '$.type') NOT IN ('image', 'file', 'audio')
        OR coalesce(json_type(v, '$.name'), '') <> 'text'
        OR coalesce(json_type(v, '$.storageId'), '') <> 'text'
        OR coalesce(json_type(v, '$.mimeType'), '') <> 'text'
        OR coalesce(json_type(v, '$.size'), 'null') NOT IN ('integer', 'real')
        OR coalesce(json_type(v, '$.metadata'), 'null') NOT IN ('null', 'object')))
)";

} // namespace oracle_detail

/// What 001 must make of every message of @p db (legacy columns intact),
/// by message id. @p scratch: a path for the oracle's SQLite file.
inline std::map<std::string, oracle_message> legacy_oracle(storage::database& db,
                                                           std::string const& scratch)
{
    storage::database o(scratch, storage::open_mode::read_write);
    o.exec("CREATE TABLE legacy(id TEXT PRIMARY KEY, attachments TEXT, tool_calls TEXT, "
           "partial_tool_calls TEXT)");
    std::map<std::string, oracle_message> out;
    {
        o.exec("BEGIN");
        auto& ins = o.prepare("INSERT INTO legacy VALUES (?, ?, ?, ?)");
        auto& q =
            db.prepare("SELECT id, attachments, tool_calls, partial_tool_calls FROM messages");
        while (q.executeStep())
        {
            ins.reset();
            for (int i = 0; i < 4; ++i)
            {
                if (q.getColumn(i).isNull())
                    ins.bind(i + 1);
                else
                    ins.bind(i + 1, q.getColumn(i).getString());
            }
            ins.exec();
            out[q.getColumn(0).getString()];
        }
        o.exec("COMMIT");
    }
    {
        auto& q = o.prepare(std::string(oracle_detail::elements) + "SELECT DISTINCT id FROM bad");
        while (q.executeStep())
            out.at(q.getColumn(0).getString()).accepted = false;
    }
    {
        auto& q = o.prepare(std::string(oracle_detail::elements) +
                            "SELECT id, count(*) FROM elems WHERE col = 'attachments' GROUP BY id");
        while (q.executeStep())
            out.at(q.getColumn(0).getString()).attachments = q.getColumn(1).getInt64();
    }
    // One row per distinct id: the final array beats the partial one, then
    // the last occurrence wins; is_partial only for ids of the partial array
    // alone; an empty or absent `arguments` is {}; an empty `result` none.
    auto& q = o.prepare(std::string(oracle_detail::elements) + R"(,
calls AS (
    SELECT id, CASE col WHEN 'tool_calls' THEN 0 ELSE 1 END AS partial, idx, v
      FROM elems WHERE col <> 'attachments'),
ranked AS (
    SELECT id, partial, json_extract(v, '$.id') AS call_id,
           CASE WHEN coalesce(json_type(v, '$.arguments'), 'null') = 'null'
                  OR (json_type(v, '$.arguments') = 'text' AND json_extract(v, '$.arguments') = '')
                THEN '{}' ELSE json_extract(v, '$.arguments') END AS arguments,
           CASE WHEN coalesce(json_type(v, '$.result'), 'null') = 'null'
                  OR (json_type(v, '$.result') = 'text' AND json_extract(v, '$.result') = '')
                THEN NULL ELSE json_extract(v, '$.result') END AS result,
           CAST(json_extract(v, '$.textPosition') AS INTEGER) AS text_position,
           row_number() OVER (PARTITION BY id, json_extract(v, '$.id') ORDER BY partial, idx DESC) AS rn
      FROM calls)
SELECT id, call_id, CAST(arguments AS TEXT), CAST(result AS TEXT), text_position, partial
  FROM ranked WHERE rn = 1 ORDER BY id, CAST(call_id AS BLOB))");
    while (q.executeStep())
    {
        oracle_call c;
        c.id = q.getColumn(1).getString();
        c.arguments = q.getColumn(2).getString();
        if (!q.getColumn(3).isNull())
            c.result = q.getColumn(3).getString();
        if (!q.getColumn(4).isNull())
            c.text_position = q.getColumn(4).getInt64();
        c.is_partial = q.getColumn(5).getInt64() != 0;
        out.at(q.getColumn(0).getString()).tool_calls.push_back(std::move(c));
    }
    for (auto& [id, m] : out)
        if (!m.accepted)
        {
            m.tool_calls.clear();
            m.attachments = 0;
        }
    return out;
}

} // namespace chatstream::test
