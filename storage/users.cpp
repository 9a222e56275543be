#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/columns.hpp"

namespace chatstream::storage
{

std::string users::ensure(database& db, std::string const& external_id,
                          std::optional<std::string> const& name)
{
    if (auto existing = find_by_external_id(db, external_id))
        return existing->id;
    auto& q = db.prepare("INSERT INTO users(id, external_id, name, created_at) VALUES(?,?,?,?) "
                         "ON CONFLICT(external_id) DO NOTHING");
    auto id = core::new_id();
    q.bind(1, id);
    q.bind(2, external_id);
    bind_opt(q, 3, name ? name : std::optional<std::string>(external_id));
    q.bind(4, core::now_ms());
    q.exec();
    return find_by_external_id(db, external_id).value().id;
}

std::optional<user_row> users::find_by_external_id(database& db, std::string const& external_id)
{
    auto& q =
        db.prepare("SELECT id, external_id, name, created_at FROM users WHERE external_id = ?");
    q.bind(1, external_id);
    if (!q.executeStep())
        return std::nullopt;
    user_row r{q.getColumn(0).getString(), opt_text(q.getColumn(1)), opt_text(q.getColumn(2)),
               q.getColumn(3).getInt64()};
    q.reset();
    return r;
}

} // namespace chatstream::storage
