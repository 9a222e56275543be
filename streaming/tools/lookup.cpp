// The `lookup` tool: searches the caller's own stored messages. It does its
// SQLite work on the read pool and completes asynchronously, so an I/O
// thread never waits for the database.
#include "chatstream/streaming/tools.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace chatstream::streaming
{
namespace
{

namespace json = boost::json;

constexpr std::size_t max_query_bytes = 200;
constexpr std::int64_t max_limit = 20;
constexpr std::size_t snippet_before = 80;
constexpr std::size_t snippet_after = 160;

struct lookup_args
{
    std::string query;
    std::int64_t limit = 5;
};

lookup_args parse(std::string_view args_json)
{
    boost::system::error_code ec;
    auto v = json::parse(args_json, ec);
    if (ec || !v.is_object())
        throw std::invalid_argument("arguments must be a JSON object");
    auto const& o = v.as_object();
    lookup_args a;
    auto const* q = o.if_contains("query");
    if (!q || !q->is_string())
        throw std::invalid_argument("missing argument 'query' (a string)");
    a.query = std::string(q->as_string());
    if (std::all_of(a.query.begin(), a.query.end(),
                    [](unsigned char c) { return std::isspace(c); }))
        throw std::invalid_argument("argument 'query' is empty");
    if (a.query.size() > max_query_bytes)
        throw std::invalid_argument("argument 'query' is longer than " +
                                    std::to_string(max_query_bytes) + " bytes");
    if (auto const* l = o.if_contains("limit"); l && !l->is_null())
    {
        if (!l->is_int64() && !l->is_uint64())
            throw std::invalid_argument("argument 'limit' must be an integer");
        a.limit = std::clamp<std::int64_t>(l->is_int64() ? l->as_int64() : max_limit, 1, max_limit);
    }
    return a;
}

// ASCII case-insensitive find for the snippet (a match PostgreSQL's ILIKE
// folded beyond ASCII falls back to the start of the content).
std::size_t find_folded(std::string_view hay, std::string_view needle)
{
    auto const it = std::search(hay.begin(), hay.end(), needle.begin(), needle.end(),
                                [](char a, char b)
                                {
                                    return std::tolower(static_cast<unsigned char>(a)) ==
                                           std::tolower(static_cast<unsigned char>(b));
                                });
    return it == hay.end() ? std::string_view::npos : static_cast<std::size_t>(it - hay.begin());
}

// A window around the match, cut on code point boundaries.
std::string snippet(std::string_view content, std::string_view query)
{
    auto at = find_folded(content, query);
    if (at == std::string_view::npos)
        at = 0;
    std::size_t begin = at > snippet_before ? at - snippet_before : 0;
    while (begin > 0 && begin < content.size() &&
           (static_cast<unsigned char>(content[begin]) & 0xC0) == 0x80)
        ++begin;
    auto const window = content.substr(begin, at - begin + query.size() + snippet_after);
    std::string out = begin > 0 ? "…" : "";
    out.append(window.substr(0, core::complete_utf8_prefix(window)));
    if (begin + window.size() < content.size())
        out += "…";
    return out;
}

std::string search(storage::database& db, tool_context const& ctx, lookup_args const& a)
{
    json::array matches;
    for (auto& hit : storage::messages::search(db, ctx.user_id, ctx.message_id, a.query, a.limit))
    {
        json::object m;
        m["messageId"] = hit.message_id;
        m["conversationId"] = hit.conversation_id;
        m["conversationTitle"] = hit.conversation_title;
        m["role"] = hit.role;
        m["createdAt"] = hit.created_at;
        m["snippet"] = snippet(hit.content, a.query);
        matches.push_back(std::move(m));
    }
    json::object out;
    out["success"] = true;
    out["query"] = a.query;
    out["matches"] = std::move(matches);
    return json::serialize(out);
}

} // namespace

void add_lookup_tool(tool_registry& registry, storage::read_pool& reads)
{
    registry.add_async(
        "lookup",
        [&reads](tool_context const& ctx, std::string args_json, boost::asio::any_io_executor,
                 std::function<void(tool_result)> done)
        {
            auto args = parse(args_json); // throws before any work starts: a failed result
            if (ctx.user_id.empty())
                throw std::invalid_argument("lookup needs a signed-in user");
            reads.post(
                [ctx, args = std::move(args), done = std::move(done)](storage::database& db)
                {
                    tool_result r;
                    try
                    {
                        r = {search(db, ctx, args), true, {}};
                    }
                    catch (std::exception const& e)
                    {
                        r = make_tool_failure(std::string("search failed: ") + e.what());
                    }
                    done(std::move(r));
                });
        });
    registry.describe(
        {"lookup",
         "Searches the user's own earlier chat messages for a phrase (case-insensitive) and "
         "returns "
         "the newest matches with a snippet around each.",
         R"({"type":"object","properties":{"query":{"type":"string","description":"text to find"},)"
         R"("limit":{"type":"integer","minimum":1,"maximum":20,"description":"default 5"}},)"
         R"("required":["query"],"additionalProperties":false})"});
}

} // namespace chatstream::streaming
