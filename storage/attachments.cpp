#include "chatstream/storage/repositories.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/columns.hpp"
#include "chatstream/storage/rows.hpp"
#include "detail/dual_write.hpp"
#include "detail/rows.hpp"

namespace chatstream::storage
{

using namespace detail;

void attachments::insert(database& db, attachment_row const& r)
{
    static std::string const sql =
        std::string("INSERT INTO attachments(") + rows::attachment_columns +
        ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
        "ON CONFLICT(message_id, position) DO UPDATE SET type = excluded.type, "
        "name = excluded.name, storage_id = excluded.storage_id, "
        "mime_type = excluded.mime_type, size = excluded.size, metadata = excluded.metadata";
    attachment_row row = r;
    if (row.id.empty())
        row.id = core::new_id();
    if (!row.created_at)
        row.created_at = core::now_ms();
    auto& q = db.prepare(sql);
    rows::bind(q, 0, row);
    q.exec();
    if (has_legacy_columns(db))
        refresh_legacy_attachments(db, r.message_id);
}

std::vector<attachment_row> attachments::list_for_message(database& db, std::string const& user_id,
                                                          std::string const& message_id)
{
    std::vector<attachment_row> out;
    if (!owns_message(db, user_id, message_id))
        return out;
    auto& q = db.prepare(std::string("SELECT ") + rows::attachment_columns +
                         " FROM attachments WHERE message_id = ? ORDER BY position");
    q.bind(1, message_id);
    while (q.executeStep())
        out.push_back(rows::read_attachment(q));
    q.reset();
    if (out.empty())
        if (auto legacy_rows = legacy_rows_for(db, message_id))
            out = std::move(legacy_rows->attachments);
    return out;
}

} // namespace chatstream::storage
