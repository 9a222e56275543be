#include "chatstream/storage/usage.hpp"

namespace chatstream::storage::usage
{

void add_message(database& db, std::string const& user_id, std::string const& day,
                 std::string const& model)
{
    // Columns on the right of DO UPDATE SET are table-qualified: PostgreSQL
    // sees `excluded` there too and calls a bare name ambiguous.
    auto& q = db.prepare("INSERT INTO usage(user_id, day, model, message_count) VALUES(?,?,?,1) "
                         "ON CONFLICT(user_id, day, model) DO UPDATE SET "
                         "message_count = usage.message_count + 1");
    q.bind(1, user_id);
    q.bind(2, day);
    q.bind(3, model);
    q.exec();
}

void add_completion(database& db, std::string const& user_id, std::string const& day,
                    std::string const& model, std::int64_t input_tokens, std::int64_t output_tokens,
                    double cost)
{
    auto& q = db.prepare(
        "INSERT INTO usage(user_id, day, model, input_tokens, output_tokens, cost) "
        "VALUES(?1,?2,?3,?4,?5,?6) ON CONFLICT(user_id, day, model) DO UPDATE SET "
        "input_tokens = usage.input_tokens + ?4, output_tokens = usage.output_tokens + ?5, "
        "cost = usage.cost + ?6");
    q.bind(1, user_id);
    q.bind(2, day);
    q.bind(3, model);
    q.bind(4, input_tokens);
    q.bind(5, output_tokens);
    q.bind(6, cost);
    q.exec();
}

std::int64_t messages_on(database& db, std::string const& user_id, std::string const& day)
{
    auto& q = db.prepare(
        "SELECT coalesce(sum(message_count), 0) FROM usage WHERE user_id = ? AND day = ?");
    q.bind(1, user_id);
    q.bind(2, day);
    q.executeStep();
    auto const n = q.getColumn(0).getInt64();
    q.reset();
    return n;
}

double cost_between(database& db, std::string const& user_id, std::string const& from_day,
                    std::string const& to_day)
{
    auto& q = db.prepare("SELECT coalesce(sum(cost), 0) FROM usage "
                         "WHERE user_id = ? AND day >= ? AND day <= ?");
    q.bind(1, user_id);
    q.bind(2, from_day);
    q.bind(3, to_day);
    q.executeStep();
    auto const c = q.getColumn(0).getDouble();
    q.reset();
    return c;
}

std::vector<usage_row> list(database& db, std::string const& user_id, std::string const& from_day,
                            std::string const& to_day)
{
    std::vector<usage_row> out;
    auto& q = db.prepare("SELECT day, model, input_tokens, output_tokens, cost, message_count "
                         "FROM usage WHERE user_id = ? AND day >= ? AND day <= ? "
                         "ORDER BY day, model");
    q.bind(1, user_id);
    q.bind(2, from_day);
    q.bind(3, to_day);
    while (q.executeStep())
        out.push_back({q.getColumn(0).getString(), q.getColumn(1).getString(),
                       q.getColumn(2).getInt64(), q.getColumn(3).getInt64(),
                       q.getColumn(4).getDouble(), q.getColumn(5).getInt64()});
    q.reset();
    return out;
}

} // namespace chatstream::storage::usage
