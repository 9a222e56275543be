#include "detail/queries.hpp"

#include "detail/row_json.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/sources.hpp"
#include "chatstream/storage/usage.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace chatstream::streaming::detail
{
namespace
{

namespace json = boost::json;

template <class Rows> json::array array_of(Rows const& rows)
{
    json::array out;
    out.reserve(rows.size());
    for (auto const& r : rows)
        out.push_back(to_json(r));
    return out;
}

frame not_found(query_request const& q, std::string const& what)
{
    return events::error(
        q.id, q.message_id ? std::optional<std::string_view>(*q.message_id) : std::nullopt,
        wire_error::not_found, "no such " + what);
}

// getUsage: rows per (day, model) in the window (default: this UTC month),
// totals, and where the caller stands against the limits.
frame usage_report(storage::database& db, std::string const& user, query_request const& q,
                   quota_limits const& limits)
{
    auto const now = core::now_ms();
    auto const today = core::utc_day(now);
    auto const from = q.from_day.value_or(core::utc_month_first_day(now));
    auto const to = q.to_day.value_or(today);
    auto const rows = storage::usage::list(db, user, from, to);
    std::int64_t in = 0, out = 0, messages = 0;
    double cost = 0;
    for (auto const& r : rows)
    {
        in += r.input_tokens;
        out += r.output_tokens;
        messages += r.message_count;
        cost += r.cost;
    }
    json::object data{
        {"from", from},
        {"to", to},
        {"days", array_of(rows)},
        {"totals",
         {{"inputTokens", in}, {"outputTokens", out}, {"cost", cost}, {"messageCount", messages}}},
        {"limits",
         {{"dailyMessages",
           limits.daily_messages > 0 ? json::value(limits.daily_messages) : nullptr},
          {"messagesToday", storage::usage::messages_on(db, user, today)},
          {"dailyResetsAt", core::utc_iso(core::next_utc_midnight_ms(now))},
          {"monthlyBudget",
           limits.monthly_budget_usd > 0 ? json::value(limits.monthly_budget_usd) : nullptr},
          {"spentThisMonth",
           storage::usage::cost_between(db, user, core::utc_month_first_day(now), today)},
          {"monthlyResetsAt", core::utc_iso(core::next_utc_month_ms(now))}}}};
    return events::result(q.id, json::serialize(data));
}

frame run(storage::database& db, std::string const& user, query_request const& q,
          quota_limits const& limits)
{
    storage::page_request page{q.cursor, q.limit};
    switch (q.name)
    {
    case query_name::list_conversations:
    {
        auto p = storage::conversations::list(db, user, page);
        json::object data{{"conversations", array_of(p.rows)},
                          {"nextCursor", nullable(p.next_cursor)}};
        return events::result(q.id, json::serialize(data));
    }
    case query_name::list_messages:
    {
        if (!storage::conversations::get(db, user, *q.conversation_id))
            return not_found(q, "conversation");
        auto p = storage::messages::list(db, user, *q.conversation_id, page);
        json::object data{{"messages", array_of(p.rows)}, {"nextCursor", nullable(p.next_cursor)}};
        return events::result(q.id, json::serialize(data));
    }
    case query_name::get_message:
    {
        auto m = storage::messages::get(db, user, *q.message_id);
        if (!m)
            return not_found(q, "message");
        auto const sources = storage::sources::list_for_message(db, user, *q.message_id);
        return events::result(q.id, json::serialize(to_json(*m, sources)));
    }
    case query_name::get_tool_calls:
    {
        if (!storage::messages::get(db, user, *q.message_id))
            return not_found(q, "message");
        auto rows =
            storage::tool_calls::list_for_message(db, user, *q.message_id, q.include_partial);
        return events::result(q.id, json::serialize(array_of(rows)));
    }
    case query_name::get_usage:
        return usage_report(db, user, q, limits);
    case query_name::get_sources:
    {
        if (!storage::messages::get(db, user, *q.message_id))
            return not_found(q, "message");
        auto rows = storage::sources::list_for_message(db, user, *q.message_id);
        return events::result(q.id, json::serialize(array_of(rows)));
    }
    case query_name::get_attachments:
    {
        if (!storage::messages::get(db, user, *q.message_id))
            return not_found(q, "message");
        auto rows = storage::attachments::list_for_message(db, user, *q.message_id);
        return events::result(q.id, json::serialize(array_of(rows)));
    }
    }
    return events::error(q.id, std::nullopt, wire_error::bad_request, "unknown query");
}

} // namespace

void run_query(storage::read_pool& reads, std::string user_id, query_request q, quota_limits limits,
               std::function<void(frame)> reply)
{
    reads.post(
        [user_id = std::move(user_id), q = std::move(q), limits,
         reply = std::move(reply)](storage::database& db)
        {
            frame out;
            try
            {
                out = run(db, user_id, q, limits);
            }
            catch (storage::storage_error const& e)
            {
                out = events::error(q.id, std::nullopt, to_wire_error(make_error_code(e.code())),
                                    e.what());
            }
            catch (std::exception const& e)
            {
                spdlog::error("query failed: {}", e.what());
                out = events::error(q.id, std::nullopt, wire_error::internal, "query failed");
            }
            reply(std::move(out));
        });
}

} // namespace chatstream::streaming::detail
