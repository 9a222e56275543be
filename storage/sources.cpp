#include "chatstream/storage/sources.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/columns.hpp"
#include "detail/rows.hpp"

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>

namespace chatstream::storage
{

namespace
{

std::string lower(std::string_view s)
{
    std::string out(s);
    std::ranges::transform(out, out.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

} // namespace

std::optional<std::string> normalize_source_url(std::string_view text)
{
    auto parsed = boost::urls::parse_uri(text);
    if (!parsed)
        return std::nullopt;
    boost::urls::url u(*parsed);
    auto const scheme = lower(u.scheme());
    if ((scheme != "http" && scheme != "https") || u.encoded_host().empty())
        return std::nullopt;
    u.set_scheme(scheme);
    // Percent-encoding of the authority normalized (RFC 3986 §6.2.2), then
    // the host lowercased: hosts are case-insensitive, paths are not.
    u.normalize_authority();
    u.set_encoded_host(lower(u.encoded_host()));
    if (u.has_port() && ((scheme == "http" && u.port() == "80") ||
                         (scheme == "https" && u.port() == "443") || u.port().empty()))
        u.remove_port();
    u.remove_fragment();
    if (u.has_query())
    {
        auto params = u.params();
        for (auto it = params.begin(); it != params.end();)
        {
            auto const key = lower((*it).key);
            if (key.starts_with("utm_"))
                it = params.erase(it);
            else
                ++it;
        }
        if (u.params().empty())
            u.remove_query();
    }
    if (u.encoded_path().empty())
        u.set_path_absolute(true);
    return std::string(u.buffer());
}

std::string source_url_hash(std::string_view normalized_url)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int size = 0;
    EVP_Digest(normalized_url.data(), normalized_url.size(), digest, &size, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * size);
    for (unsigned int i = 0; i < size; ++i)
    {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

std::string source_domain(std::string_view normalized_url)
{
    auto parsed = boost::urls::parse_uri(normalized_url);
    if (!parsed)
        return {};
    std::string host(parsed->encoded_host());
    if (host.starts_with("www."))
        host.erase(0, 4);
    return host;
}

namespace sources
{

void bind(statement& s, int first, source_row const& r)
{
    s.bindNoCopy(first + 1, r.id);
    s.bindNoCopy(first + 2, r.message_id);
    s.bindNoCopy(first + 3, r.conversation_id);
    s.bindNoCopy(first + 4, r.user_id);
    s.bind(first + 5, r.position);
    s.bindNoCopy(first + 6, r.url_hash);
    s.bindNoCopy(first + 7, r.url);
    bind_ref(s, first + 8, r.title);
    bind_ref(s, first + 9, r.snippet);
    bind_ref(s, first + 10, r.published_date);
    s.bindNoCopy(first + 11, r.provider);
    s.bind(first + 12, r.is_partial ? 1 : 0);
    s.bind(first + 13, r.created_at);
}

void bind(statement& s, int first, source_metadata_row const& r)
{
    s.bindNoCopy(first + 1, r.url_hash);
    s.bindNoCopy(first + 2, r.url);
    s.bindNoCopy(first + 3, r.domain);
    bind_ref(s, first + 4, r.og_title);
    bind_ref(s, first + 5, r.og_description);
    bind_ref(s, first + 6, r.og_image);
    bind_ref(s, first + 7, r.favicon);
    bind_opt(s, first + 8, r.fetched_at);
    bind_ref(s, first + 9, r.error);
}

source_row read(statement& q, int first)
{
    source_row r;
    r.id = q.getColumn(first + 0).getString();
    r.message_id = q.getColumn(first + 1).getString();
    r.conversation_id = q.getColumn(first + 2).getString();
    r.user_id = q.getColumn(first + 3).getString();
    r.position = q.getColumn(first + 4).getInt64();
    r.url_hash = q.getColumn(first + 5).getString();
    r.url = q.getColumn(first + 6).getString();
    r.title = opt_text(q.getColumn(first + 7));
    r.snippet = opt_text(q.getColumn(first + 8));
    r.published_date = opt_text(q.getColumn(first + 9));
    r.provider = q.getColumn(first + 10).getString();
    r.is_partial = q.getColumn(first + 11).getInt64() != 0;
    r.created_at = q.getColumn(first + 12).getInt64();
    return r;
}

source_metadata_row read_metadata(statement& q, int first)
{
    source_metadata_row m;
    m.url_hash = q.getColumn(first + 0).getString();
    m.url = q.getColumn(first + 1).getString();
    m.domain = q.getColumn(first + 2).getString();
    m.og_title = opt_text(q.getColumn(first + 3));
    m.og_description = opt_text(q.getColumn(first + 4));
    m.og_image = opt_text(q.getColumn(first + 5));
    m.favicon = opt_text(q.getColumn(first + 6));
    m.fetched_at = opt_int(q.getColumn(first + 7));
    m.error = opt_text(q.getColumn(first + 8));
    return m;
}

bool insert(database& db, source_row const& r, std::string const& normalized_url)
{
    auto& meta = db.prepare("INSERT INTO source_metadata(url_hash, url, domain) VALUES(?,?,?) "
                            "ON CONFLICT(url_hash) DO NOTHING");
    auto const domain = source_domain(normalized_url);
    meta.bindNoCopy(1, r.url_hash);
    meta.bindNoCopy(2, normalized_url);
    meta.bindNoCopy(3, domain);
    meta.exec();

    static std::string const sql = std::string("INSERT INTO sources(") + source_columns +
                                   ") VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING";
    source_row row = r;
    if (row.id.empty())
        row.id = core::new_id();
    if (!row.created_at)
        row.created_at = core::now_ms();
    auto& q = db.prepare(sql);
    bind(q, 0, row);
    return q.exec() > 0;
}

bool needs_enrichment(database& db, std::string const& url_hash)
{
    auto& q = db.prepare("SELECT fetched_at FROM source_metadata WHERE url_hash = ?");
    q.bind(1, url_hash);
    bool const needs = q.executeStep() && q.getColumn(0).isNull();
    q.reset();
    return needs;
}

void finalize(database& db, std::string const& message_id)
{
    auto& q =
        db.prepare("UPDATE sources SET is_partial = 0 WHERE message_id = ? AND is_partial = 1");
    q.bind(1, message_id);
    q.exec();
}

std::vector<citer> set_metadata(database& db, source_metadata_row const& m)
{
    auto& q = db.prepare("UPDATE source_metadata SET og_title = ?2, og_description = ?3, "
                         "og_image = ?4, favicon = ?5, fetched_at = ?6, error = ?7 "
                         "WHERE url_hash = ?1");
    q.bindNoCopy(1, m.url_hash);
    bind_ref(q, 2, m.og_title);
    bind_ref(q, 3, m.og_description);
    bind_ref(q, 4, m.og_image);
    bind_ref(q, 5, m.favicon);
    bind_opt(q, 6, m.fetched_at);
    bind_ref(q, 7, m.error);
    std::vector<citer> citers;
    if (q.exec() == 0)
        return citers;
    auto& c = db.prepare(
        "SELECT DISTINCT user_id, conversation_id FROM sources WHERE url_hash = ? LIMIT 1000");
    c.bindNoCopy(1, m.url_hash);
    while (c.executeStep())
        citers.push_back({c.getColumn(0).getString(), c.getColumn(1).getString()});
    c.reset();
    return citers;
}

std::vector<source_row> rows_for_message(database& db, std::string const& message_id)
{
    std::vector<source_row> out;
    auto& q = db.prepare(std::string("SELECT ") + source_columns +
                         " FROM sources WHERE message_id = ? ORDER BY position");
    q.bind(1, message_id);
    while (q.executeStep())
        out.push_back(read(q));
    q.reset();
    return out;
}

std::vector<with_metadata> list_for_message(database& db, std::string const& user_id,
                                            std::string const& message_id)
{
    std::vector<with_metadata> out;
    if (!detail::owns_message(db, user_id, message_id))
        return out;
    static std::string const sql = []
    {
        std::string s = "SELECT ";
        for (std::string_view c :
             {"id", "message_id", "conversation_id", "user_id", "position", "url_hash", "url",
              "title", "snippet", "published_date", "provider", "is_partial", "created_at"})
            s.append("s.").append(c).append(", ");
        for (std::string_view c : {"url_hash", "url", "domain", "og_title", "og_description",
                                   "og_image", "favicon", "fetched_at", "error", "access_count"})
            s.append("m.").append(c).append(", ");
        s.resize(s.size() - 2);
        s += " FROM sources s LEFT JOIN source_metadata m ON m.url_hash = s.url_hash "
             "WHERE s.message_id = ? ORDER BY s.position";
        return s;
    }();
    auto& q = db.prepare(sql);
    q.bind(1, message_id);
    while (q.executeStep())
    {
        with_metadata w{read(q), std::nullopt};
        if (!q.getColumn(source_width).isNull())
        {
            w.metadata = read_metadata(q, source_width);
            w.metadata->access_count = q.getColumn(source_width + metadata_width).getInt64();
        }
        out.push_back(std::move(w));
    }
    q.reset();
    return out;
}

} // namespace sources

} // namespace chatstream::storage
