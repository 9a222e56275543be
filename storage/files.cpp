#include "chatstream/storage/files.hpp"

namespace chatstream::storage::files
{

void record_upload(database& db, file_row const& f, std::string const& user_id,
                   std::string const& name, std::int64_t now)
{
    auto& file = db.prepare("INSERT INTO files(storage_id, size, mime_type, metadata, created_at) "
                            "VALUES(?,?,?,?,?) ON CONFLICT(storage_id) DO NOTHING");
    file.bind(1, f.storage_id);
    file.bind(2, static_cast<std::int64_t>(f.size));
    file.bind(3, f.mime_type);
    if (f.metadata)
        file.bind(4, *f.metadata);
    else
        file.bind(4);
    file.bind(5, static_cast<std::int64_t>(f.created_at));
    file.exec();

    auto& up = db.prepare(
        "INSERT INTO uploads(user_id, storage_id, name, mime_type, uploaded_at) VALUES(?,?,?,?,?) "
        "ON CONFLICT(user_id, storage_id) DO UPDATE SET name = excluded.name, "
        "mime_type = excluded.mime_type, uploaded_at = excluded.uploaded_at");
    up.bind(1, user_id);
    up.bind(2, f.storage_id);
    up.bind(3, name);
    up.bind(4, f.mime_type);
    up.bind(5, static_cast<std::int64_t>(now));
    up.exec();
}

std::optional<readable_file> find_readable(database& db, std::string const& user_id,
                                           std::string const& storage_id)
{
    // The uploader's name first, else the name on one of the caller's
    // attachments; no name at all means "not yours".
    auto& q = db.prepare(R"(
SELECT f.size,
       COALESCE((SELECT u.mime_type FROM uploads u WHERE u.storage_id = f.storage_id AND u.user_id = ?2),
                f.mime_type),
       f.metadata, f.created_at,
       COALESCE((SELECT u.name FROM uploads u WHERE u.storage_id = f.storage_id AND u.user_id = ?2),
                (SELECT a.name FROM attachments a WHERE a.storage_id = f.storage_id AND a.user_id = ?2
                 ORDER BY a.created_at LIMIT 1))
FROM files f WHERE f.storage_id = ?1)");
    q.bind(1, storage_id);
    q.bind(2, user_id);
    std::optional<readable_file> out;
    if (q.executeStep() && !q.getColumn(4).isNull())
    {
        readable_file r;
        r.file.storage_id = storage_id;
        r.file.size = q.getColumn(0).getInt64();
        r.file.mime_type = q.getColumn(1).getString();
        if (!q.getColumn(2).isNull())
            r.file.metadata = q.getColumn(2).getString();
        r.file.created_at = q.getColumn(3).getInt64();
        r.name = q.getColumn(4).getString();
        out = std::move(r);
    }
    q.reset();
    return out;
}

std::optional<attachable_file> find_attachable(database& db, std::string const& user_id,
                                               std::string const& storage_id)
{
    std::optional<attachable_file> out;
    // The caller's upload: its name and type, the blob's size and metadata.
    auto& up = db.prepare(
        "SELECT u.mime_type, f.size, f.metadata, u.name FROM uploads u "
        "JOIN files f ON f.storage_id = u.storage_id WHERE u.user_id = ?1 AND u.storage_id = ?2");
    up.bind(1, user_id);
    up.bind(2, storage_id);
    if (up.executeStep())
    {
        attachable_file a;
        a.mime_type = up.getColumn(0).getString();
        a.size = up.getColumn(1).getInt64();
        if (!up.getColumn(2).isNull())
            a.metadata = up.getColumn(2).getString();
        a.name = up.getColumn(3).getString();
        out = std::move(a);
    }
    up.reset();
    if (out)
        return out;

    // Re-attaching a file one of the caller's messages references: the blob
    // when chatstream stored it, else (a legacy id) that earlier row.
    auto& att = db.prepare(R"(
SELECT a.type, a.mime_type, a.size, a.metadata, a.name, f.storage_id, f.mime_type, f.size, f.metadata
FROM attachments a LEFT JOIN files f ON f.storage_id = a.storage_id
WHERE a.user_id = ?1 AND a.storage_id = ?2
ORDER BY a.created_at, a.id LIMIT 1)");
    att.bind(1, user_id);
    att.bind(2, storage_id);
    if (att.executeStep())
    {
        attachable_file a;
        a.name = att.getColumn(4).getString();
        if (!att.getColumn(5).isNull())
        {
            a.mime_type = att.getColumn(6).getString();
            a.size = att.getColumn(7).getInt64();
            if (!att.getColumn(8).isNull())
                a.metadata = att.getColumn(8).getString();
        }
        else
        {
            a.type = att.getColumn(0).getString();
            a.mime_type = att.getColumn(1).getString();
            a.size = att.getColumn(2).getInt64();
            if (!att.getColumn(3).isNull())
                a.metadata = att.getColumn(3).getString();
        }
        out = std::move(a);
    }
    att.reset();
    return out;
}

bool can_attach(database& db, std::string const& user_id, std::string const& storage_id)
{
    return find_attachable(db, user_id, storage_id).has_value();
}

std::vector<std::string> collect_garbage(database& db, std::int64_t cutoff_ms, std::size_t limit)
{
    // Decided inside the writer's transaction: a generate that attaches the
    // file runs either before (its attachment row keeps the file) or after
    // (the uploads row is gone, so it is refused). How attachment rows
    // disappeared (message/conversation delete, cascade) does not matter.
    auto& q = db.prepare(R"(
SELECT f.storage_id FROM files f
WHERE f.created_at < ?1
  AND NOT EXISTS (SELECT 1 FROM attachments a WHERE a.storage_id = f.storage_id)
  AND NOT EXISTS (SELECT 1 FROM uploads u WHERE u.storage_id = f.storage_id AND u.uploaded_at >= ?1)
LIMIT ?2)");
    q.bind(1, static_cast<std::int64_t>(cutoff_ms));
    q.bind(2, static_cast<std::int64_t>(limit));
    std::vector<std::string> ids;
    while (q.executeStep())
        ids.push_back(q.getColumn(0).getString());
    q.reset();
    auto& del = db.prepare("DELETE FROM files WHERE storage_id = ?"); // uploads cascade
    for (auto const& id : ids)
    {
        del.reset();
        del.clearBindings();
        del.bind(1, id);
        del.exec();
    }
    return ids;
}

} // namespace chatstream::storage::files
