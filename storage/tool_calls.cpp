#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/core/json.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/rows.hpp"
#include "detail/dual_write.hpp"
#include "detail/rows.hpp"

namespace chatstream::storage
{

using namespace detail;

void tool_calls::upsert(database& db, tool_call_row const& r)
{
    static std::string const sql =
        std::string("INSERT INTO tool_calls(") + rows::tool_call_columns +
        ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(message_id, tool_call_id) DO UPDATE SET "
        "  args = CASE WHEN excluded.args IN ('', '{}') THEN tool_calls.args ELSE excluded.args "
        "END, "
        "  result = coalesce(excluded.result, tool_calls.result), "
        "  text_position = coalesce(tool_calls.text_position, excluded.text_position), "
        "  is_partial = excluded.is_partial, "
        "  timestamp = excluded.timestamp";
    tool_call_row row = r;
    if (row.id.empty())
        row.id = core::new_id();
    if (row.args.empty())
        row.args = "{}";
    if (!row.created_at)
        row.created_at = core::now_ms();
    auto& q = db.prepare(sql);
    rows::bind(q, 0, row);
    q.exec();
    if (has_legacy_columns(db))
        refresh_legacy_tool_calls(db, r.message_id);
}

void tool_calls::finalize(database& db, std::string const& message_id, std::string const& reason)
{
    // The error result is built here, not with the engine's JSON functions,
    // so it is the same compact text on both backends.
    auto& q = db.prepare("UPDATE tool_calls SET is_partial = 0, result = coalesce(result, ?2) "
                         "WHERE message_id = ?1 AND (is_partial = 1 OR result IS NULL)");
    q.bind(1, message_id);
    q.bind(2, R"({"success":false,"error":)" + core::json_string(reason) + "}");
    if (q.exec() > 0 && has_legacy_columns(db))
        refresh_legacy_tool_calls(db, message_id);
}

std::vector<tool_call_row> tool_calls::rows_for_message(database& db, std::string const& message_id)
{
    std::vector<tool_call_row> out;
    auto& q = db.prepare(std::string("SELECT ") + rows::tool_call_columns +
                         " FROM tool_calls WHERE message_id = ? ORDER BY created_at, tool_call_id");
    q.bind(1, message_id);
    while (q.executeStep())
        out.push_back(rows::read_tool_call(q));
    q.reset();
    return out;
}

std::vector<tool_calls::ui_tool_call> tool_calls::list_for_message(database& db,
                                                                   std::string const& user_id,
                                                                   std::string const& message_id,
                                                                   bool include_partial)
{
    std::vector<ui_tool_call> out;
    if (!owns_message(db, user_id, message_id))
        return out;
    auto rows = rows_for_message(db, message_id);
    if (rows.empty())
        if (auto legacy_rows = legacy_rows_for(db, message_id))
            rows = std::move(legacy_rows->tool_calls);
    for (auto& r : rows)
    {
        if (r.is_partial && !include_partial)
            continue;
        out.push_back({std::move(r.tool_call_id), std::move(r.tool_name), std::move(r.args),
                       std::move(r.result), r.timestamp, r.text_position, r.is_partial});
    }
    return out;
}

} // namespace chatstream::storage
