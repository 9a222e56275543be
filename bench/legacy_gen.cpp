// Legacy database generator (see legacy_gen.hpp). Built as the `legacy_gen`
// tool (CHATSTREAM_LEGACY_GEN_MAIN) and compiled into the migration tests
// and benchmark.
//
//   legacy_gen --out PATH|postgres://… [--messages N] [--seed S] [--no-edge-cases]
#include "legacy_gen.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <optional>
#include <variant>
#include <vector>

namespace chatstream::bench
{
namespace
{

// splitmix64: tiny, and identical on every platform (std distributions are not).
struct rng
{
    std::uint64_t state;
    std::uint64_t next()
    {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::uint64_t below(std::uint64_t n) { return next() % n; }
    bool percent(int p) { return static_cast<int>(below(100)) < p; }
};

// Convex-like ids: random, so id order is not insertion order.
std::string make_id(rng& r, char const* prefix)
{
    static constexpr char alphabet[] = "0123456789abcdefghjkmnpqrstvwxyz";
    std::string id = prefix;
    for (int i = 0; i < 24; ++i)
        id += alphabet[r.below(32)];
    return id;
}

// Text fragments mixing ASCII, accents, CJK and astral emoji (surrogate
// pairs), so UTF-8 bytes, code points and UTF-16 units all differ.
constexpr std::array<char const*, 10> fragments = {"Sure, here is the answer. ",
                                                   "Voilà, ça marche très bien ! ",
                                                   "你好，世界。",
                                                   "😀 done 🚀 ",
                                                   "日本語のテキスト、",
                                                   "Grüße aus Köln. ",
                                                   "The weather today: ",
                                                   "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝔵 ",
                                                   "한국어 문장입니다. ",
                                                   "Let me check that for you. "};
constexpr std::array<char const*, 4> tool_names = {"weather", "calculator", "web_search",
                                                   "datetime"};

struct message
{
    std::string id;
    std::string conversation_id;
    std::string user_id;
    std::string role;
    std::string content;
    std::optional<std::string> partial_content;
    std::string status = "complete";
    std::int64_t created_at = 0;
    std::optional<std::string> attachments;
    std::optional<std::string> tool_calls;
    std::optional<std::string> partial_tool_calls;
};

struct call
{
    std::string id;
    std::string name;
    std::optional<std::string> arguments; // the JSON *string* value; nullopt = key absent
    std::optional<std::string> result;
    std::int64_t timestamp = 0;
    std::optional<std::int64_t> text_position; // nullopt = key absent
    bool null_text_position = false;           // "textPosition": null
};

std::string render_calls(std::vector<call> const& calls)
{
    std::string out = "[";
    for (auto const& c : calls)
    {
        if (out.size() > 1)
            out += ',';
        out += "{\"id\":";
        core::append_json_string(out, c.id);
        out += ",\"name\":";
        core::append_json_string(out, c.name);
        if (c.arguments)
        {
            out += ",\"arguments\":";
            core::append_json_string(out, *c.arguments);
        }
        if (c.result)
        {
            out += ",\"result\":";
            core::append_json_string(out, *c.result);
        }
        out += fmt::format(",\"timestamp\":{}", c.timestamp);
        if (c.text_position)
            out += fmt::format(",\"textPosition\":{}", *c.text_position);
        if (c.null_text_position)
            out += ",\"textPosition\":null";
        out += '}';
    }
    return out + "]";
}

std::string attachment_json(rng& r, int index, bool with_metadata)
{
    static constexpr std::array<char const*, 3> types = {"image", "file", "audio"};
    static constexpr std::array<char const*, 3> mimes = {"image/png", "application/pdf",
                                                         "audio/mpeg"};
    auto const t = r.below(3);
    std::string out = fmt::format(
        R"({{"type":"{}","name":"{}","storageId":"{}","mimeType":"{}","size":{})", types[t],
        fmt::format("文件-{}-😀.{}", index,
                    t == 0   ? "png"
                    : t == 1 ? "pdf"
                             : "mp3"),
        make_id(r, "kg"), mimes[t], 1000 + r.below(5'000'000));
    if (with_metadata)
        out +=
            t == 0
                ? fmt::format(
                      R"(,"metadata":{{"width":{},"height":{},"prompt":"a cat 🐱","model":"dall-e-3"}})",
                      256 + r.below(1024), 256 + r.below(1024))
                : fmt::format(R"(,"metadata":{{"duration":{}.5}})", r.below(600));
    return out + "}";
}

std::string random_text(rng& r, std::size_t pieces, std::vector<std::int64_t>* boundaries = nullptr)
{
    std::string text;
    for (std::size_t i = 0; i < pieces; ++i)
    {
        text += fragments[r.below(fragments.size())];
        if (boundaries)
            boundaries->push_back(static_cast<std::int64_t>(core::utf16_length(text)));
    }
    return text;
}

std::string arguments_for(rng& r, std::string const& tool)
{
    if (tool == "weather")
        return fmt::format(R"({{"city": "Zürich", "units": "metric", "days": {}}})",
                           1 + r.below(7));
    if (tool == "calculator")
        return fmt::format(R"({{"expression":"{} * {} + 1"}})", r.below(1000), r.below(1000));
    if (tool == "web_search")
        return R"({"query":"東京 天気 😀","limit":5})";
    return R"({"timezone":"Europe/Paris"})";
}

std::string result_for(rng& r, std::string const& tool)
{
    if (tool == "weather")
        return fmt::format(R"({{"temperature":{}.5,"condition":"sunny ☀️"}})", r.below(35));
    if (tool == "calculator")
        return fmt::format(R"({{"result":{}}})", r.below(1'000'000));
    if (tool == "web_search")
        return R"({"results":[{"title":"天気","url":"https://example.com/a?b=1"}]})";
    return R"({"iso":"2024-05-01T12:00:00+02:00"})";
}

// Heavy profile: arguments of ~150-400 bytes and results of ~400-1200
// bytes (search snippets, nested objects), as agents with real tools produce.
std::string heavy_arguments(rng& r, std::string const& tool)
{
    std::string out = "{\"tool\":" + core::json_string(tool) +
                      ",\"query\":" + core::json_string(random_text(r, 3 + r.below(6)));
    out += fmt::format(",\"limit\":{},\"filters\":{{\"lang\":\"de\",\"safe\":true,\"since\":{}}}",
                       1 + r.below(20), 1'600'000'000 + r.below(100'000'000));
    return out + "}";
}

std::string heavy_result(rng& r)
{
    std::string out = "{\"results\":[";
    auto const n = 2 + r.below(4);
    for (std::uint64_t i = 0; i < n; ++i)
        out += fmt::format(
            "{}{{\"title\":{},\"url\":\"https://example.com/{}\",\"score\":{}.{},\"snippet\":{}}}",
            i ? "," : "", core::json_string(random_text(r, 1 + r.below(2))), make_id(r, "p"),
            r.below(10), r.below(1000), core::json_string(random_text(r, 2 + r.below(5))));
    return out + "],\"took_ms\":" + std::to_string(r.below(900)) + "}";
}

// Tool calls for an assistant message whose text is being generated.
std::vector<call> random_calls(rng& r, std::string const& content, std::int64_t at, int count,
                               bool heavy = false)
{
    std::vector<call> calls;
    auto const len = static_cast<std::int64_t>(core::utf16_length(content));
    for (int i = 0; i < count; ++i)
    {
        call c;
        c.id = "call_" + make_id(r, "");
        c.name = tool_names[r.below(tool_names.size())];
        c.arguments = heavy ? heavy_arguments(r, c.name) : arguments_for(r, c.name);
        c.result = heavy ? heavy_result(r) : result_for(r, c.name);
        c.timestamp = at + 10 * (i + 1);
        c.text_position =
            len ? static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(len) + 1)) : 0;
        calls.push_back(std::move(c));
    }
    return calls;
}

// One message per edge case of issue 4; index beyond the list = none.
bool edge_case(int index, message& m, rng& r, legacy_gen_stats& stats)
{
    auto at = m.created_at;
    auto base_call = [&](char const* id, char const* args)
    {
        call c;
        c.id = id;
        c.name = "weather";
        c.arguments = args;
        c.result = R"({"ok":true})";
        c.timestamp = at;
        c.text_position = 3;
        return c;
    };
    m.role = "assistant";
    switch (index)
    {
    case 0: // emoji + CJK before the call: UTF-16 offset 6 = 3 CJK + 😀 (2 units) + space
        m.content = "你好吗😀 here is the weather: sunny";
        {
            auto c = base_call("call_cjk", R"({"city":"東京"})");
            c.text_position = static_cast<std::int64_t>(core::utf16_length("你好吗😀 "));
            m.tool_calls = render_calls({c});
        }
        break;
    case 1:
        m.content = "all NULL";
        break; // every array NULL
    case 2:
        m.content = "all empty arrays";
        m.attachments = m.tool_calls = m.partial_tool_calls = "[]";
        break;
    case 3: // duplicate id in tool_calls: the last occurrence wins
        m.content = "duplicate ids";
        m.tool_calls =
            render_calls({base_call("call_dup", R"({"v":1})"), base_call("call_other", "{}"),
                          base_call("call_dup", R"({"v":2})")});
        break;
    case 4: // call_both in both arrays (final wins), call_partial only partial
        m.content = "ids in both arrays";
        m.tool_calls = render_calls({base_call("call_both", R"({"final":true})")});
        {
            auto p = base_call("call_both", R"({"final":false})");
            p.result.reset();
            auto q = base_call("call_partial", R"({"partial":true})");
            q.result.reset();
            m.partial_tool_calls = render_calls({p, q});
        }
        m.status = "generating";
        break;
    case 5: // textPosition missing, and explicitly null
    {
        m.content = "missing textPosition";
        auto a = base_call("call_nopos", "{}");
        a.text_position.reset();
        auto b = base_call("call_nullpos", "{}");
        b.text_position.reset();
        b.null_text_position = true;
        m.tool_calls = render_calls({a, b});
        break;
    }
    case 6: // 200 KB of arguments
    {
        m.content = "big arguments";
        std::string blob;
        while (blob.size() < 200 * 1024)
            blob += "lorem ipsum 😀 ";
        auto c = base_call("call_big", "");
        c.arguments = "{\"text\":" + core::json_string(blob) + "}";
        m.tool_calls = render_calls({c});
        break;
    }
    case 7: // malformed array text
        m.role = "user";
        m.content = "malformed attachments";
        m.attachments = R"([{"type":"image","name":"x.png")";
        ++stats.malformed;
        break;
    case 8: // malformed arguments string inside a valid array
        m.content = "malformed arguments";
        m.tool_calls = render_calls({base_call("call_bad", "{city: Paris}")});
        ++stats.malformed;
        break;
    case 9: // empty and missing arguments are {}
    {
        m.content = "empty arguments";
        auto a = base_call("call_empty", "");
        auto b = base_call("call_missing", "");
        b.arguments.reset();
        m.tool_calls = render_calls({a, b});
        break;
    }
    case 10: // attachments at three positions, with and without metadata; no result
    {
        m.role = "user";
        m.content = "three attachments 📎";
        m.attachments = "[" + attachment_json(r, 0, true) + "," + attachment_json(r, 1, false) +
                        "," + attachment_json(r, 2, true) + "]";
        break;
    }
    case 11: // repeated id inside partial_tool_calls: last partial wins
    {
        m.content = "partial duplicates";
        m.status = "generating";
        auto a = base_call("call_pp", R"({"step":1})");
        a.result.reset();
        auto b = base_call("call_pp", R"({"step":2})");
        b.result.reset();
        m.partial_tool_calls = render_calls({a, b});
        break;
    }
    case 12: // not an array at all
        m.content = "object instead of array";
        m.tool_calls = R"({"id":"x"})";
        ++stats.malformed;
        break;
    default:
        return false;
    }
    return true;
}

} // namespace

char const* legacy_schema_sql(storage::dialect d)
{
    return migrations::legacy_schema_sql(d);
}

namespace
{

using value = std::variant<std::monostate, std::int64_t, std::string>;

// Inserts rows of one table. SQLite: one cached single-row statement per
// row (in-process, a round trip costs nothing). PostgreSQL: multi-row
// INSERTs of up to `rows_per_statement` rows, since every statement is a
// network round trip.
class row_sink
{
public:
    static constexpr std::size_t rows_per_statement = 500;

    /// @p parent is flushed first, so the rows a batch references exist.
    row_sink(storage::database& db, std::string table, std::vector<char const*> columns,
             row_sink* parent = nullptr)
        : db_(db), table_(std::move(table)), columns_(std::move(columns)), parent_(parent)
    {
    }

    void add(std::vector<value> row)
    {
        pending_.push_back(std::move(row));
        if (!db_.is_postgres() || pending_.size() >= rows_per_statement)
            flush();
    }

    void flush()
    {
        if (pending_.empty())
            return;
        if (parent_)
            parent_->flush();
        auto& s = db_.prepare(sql_for(pending_.size()));
        int i = 0;
        for (auto const& row : pending_)
            for (auto const& v : row)
            {
                ++i;
                if (auto const* n = std::get_if<std::int64_t>(&v))
                    s.bind(i, *n);
                else if (auto const* t = std::get_if<std::string>(&v))
                    s.bindNoCopy(i, *t);
                else
                    s.bind(i);
            }
        s.exec();
        pending_.clear();
    }

private:
    std::string sql_for(std::size_t rows) const
    {
        std::string sql = "INSERT INTO " + table_ + "(";
        for (std::size_t c = 0; c < columns_.size(); ++c)
            sql += (c ? "," : "") + std::string(columns_[c]);
        sql += ") VALUES";
        int n = 0;
        for (std::size_t r = 0; r < rows; ++r)
        {
            sql += r ? ",(" : "(";
            for (std::size_t c = 0; c < columns_.size(); ++c)
                sql += (c ? ",?" : "?") + std::to_string(++n);
            sql += ')';
        }
        return sql;
    }

    storage::database& db_;
    std::string table_;
    std::vector<char const*> columns_;
    row_sink* parent_;
    std::vector<std::vector<value>> pending_;
};

value opt(std::optional<std::string> const& v)
{
    return v ? value(*v) : value();
}

} // namespace

legacy_gen_stats generate_legacy_db(std::string const& location, legacy_gen_options const& o)
{
    legacy_gen_stats stats;
    storage::database_options dbo;
    dbo.sync = storage::sync_mode::off; // generated data; durability is irrelevant
    auto const where = storage::parse_location(location);
    if (where.dialect == storage::dialect::sqlite)
        for (auto const* suffix : {"", "-wal", "-shm"})
            std::filesystem::remove(where.target + suffix);
    storage::database db(location, storage::open_mode::read_write, dbo);
    if (db.is_postgres())
        // "Replaced", like the file: whatever a previous run left in this schema goes.
        for (auto const* t : {"generations", "nodes", "usage", "uploads", "files",
                              "migration_errors", "migrations", "tool_calls", "attachments",
                              "messages", "conversations", "users", "schema_migrations"})
            db.exec(std::string("DROP TABLE IF EXISTS ") + t + " CASCADE");
    db.exec(legacy_schema_sql(db.dialect()));

    rng r{o.seed * 0x2545f4914f6cdd1dULL + 1};
    std::int64_t const epoch = 1'700'000'000'000;
    row_sink ins_user(db, "users", {"id", "external_id", "name", "created_at"});
    row_sink ins_conv(
        db, "conversations",
        {"id", "user_id", "title", "model", "created_at", "updated_at", "last_message_at"},
        &ins_user);
    row_sink ins_msg(db, "messages",
                     {"id", "conversation_id", "user_id", "role", "content", "partial_content",
                      "status", "model", "created_at", "updated_at", "attachments", "tool_calls",
                      "partial_tool_calls"},
                     &ins_conv);

    storage::transaction tx(db);
    std::string user_id, conversation_id;
    auto const per_conv = std::max<std::int64_t>(2, o.messages_per_conversation);
    for (std::int64_t i = 0; i < o.messages; ++i)
    {
        std::int64_t const at = epoch + i * 1000;
        if (i % per_conv == 0)
        {
            auto const conv_index = i / per_conv;
            if (conv_index % std::max<std::int64_t>(1, o.conversations_per_user) == 0)
            {
                user_id = make_id(r, "us");
                ins_user.add(
                    {user_id, "ext|" + user_id, fmt::format("User {} 😀", stats.users), at});
                ++stats.users;
            }
            conversation_id = make_id(r, "cv");
            ins_conv.add({conversation_id, user_id, fmt::format("Chat {} 你好", conv_index),
                          std::string("gpt-4o"), at, at + per_conv * 1000, at + per_conv * 1000});
            ++stats.conversations;
        }

        message m;
        m.id = make_id(r, "ms");
        m.conversation_id = conversation_id;
        m.user_id = user_id;
        m.created_at = at;
        bool const edge = o.edge_cases && i < 13 && edge_case(static_cast<int>(i), m, r, stats);
        if (!edge)
        {
            // NULL and [] both mean "none" in the wild; mix them.
            auto none = [&]() -> std::optional<std::string>
            {
                if (r.percent(50))
                    return std::nullopt;
                return std::string("[]");
            };
            m.attachments = none();
            m.tool_calls = none();
            m.partial_tool_calls = none();
            m.role = (i % per_conv) % 2 == 0 ? "user" : "assistant";
            if (m.role == "user")
            {
                m.content = random_text(r, o.heavy ? 3 + r.below(10) : 1 + r.below(3));
                if (r.percent(o.attachment_percent))
                {
                    auto const n = 1 + static_cast<int>(r.below(2));
                    std::string a = "[";
                    for (int k = 0; k < n; ++k)
                        a += (k ? "," : "") + attachment_json(r, k, r.percent(50));
                    m.attachments = a + "]";
                }
            }
            else
            {
                m.content = random_text(r, o.heavy ? 6 + r.below(20) : 2 + r.below(6));
                if (r.percent(o.tool_call_percent))
                    m.tool_calls = render_calls(random_calls(
                        r, m.content, at, 1 + static_cast<int>(r.below(o.heavy ? 4 : 3)), o.heavy));
                if (r.percent(o.partial_percent))
                {
                    auto calls =
                        random_calls(r, m.content, at, 1 + static_cast<int>(r.below(2)), o.heavy);
                    for (auto& c : calls)
                        c.result.reset();
                    m.partial_tool_calls = render_calls(calls);
                    m.status = "generating";
                    m.partial_content = m.content;
                }
            }
            if (static_cast<int>(r.below(1000)) < o.malformed_per_mille)
            {
                // Truncated JSON, the classic damage of a crashed writer.
                auto& victim =
                    m.tool_calls && m.tool_calls->size() > 2 ? m.tool_calls : m.attachments;
                // Cut on a UTF-8 boundary: broken JSON, but valid text, which
                // PostgreSQL insists on (and a crashed JavaScript writer emits).
                if (victim && victim->size() > 2)
                {
                    auto cut = victim->size() / 2;
                    while (cut > 0 && (static_cast<unsigned char>((*victim)[cut]) & 0xC0) == 0x80)
                        --cut;
                    victim = victim->substr(0, cut);
                }
                else
                    victim = std::string("[{");
                ++stats.malformed;
            }
        }
        if (m.attachments && m.attachments->size() > 2)
            ++stats.with_attachments;
        if ((m.tool_calls && m.tool_calls->size() > 2) ||
            (m.partial_tool_calls && m.partial_tool_calls->size() > 2))
            ++stats.with_tool_calls;

        ins_msg.add({m.id, m.conversation_id, m.user_id, m.role, m.content, opt(m.partial_content),
                     m.status, std::string("gpt-4o"), m.created_at, m.created_at,
                     opt(m.attachments), opt(m.tool_calls), opt(m.partial_tool_calls)});
        ++stats.messages;
    }
    ins_user.flush();
    ins_conv.flush();
    ins_msg.flush();
    tx.commit();
    if (!db.is_postgres())
        db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return stats;
}

} // namespace chatstream::bench

#ifdef CHATSTREAM_LEGACY_GEN_MAIN
#include <CLI/CLI.hpp>

int main(int argc, char** argv)
{
    CLI::App app{
        "legacy_gen: writes a deterministic legacy chatstream database (docs/design.md §5)"};
    std::string out;
    chatstream::bench::legacy_gen_options o;
    bool no_edge = false;
    app.add_option("--out", out,
                   "SQLite file (replaced) or postgres:// URI (its chatstream tables replaced)")
        ->required();
    app.add_option("--messages", o.messages, "number of messages")->capture_default_str();
    app.add_option("--seed", o.seed, "random seed")->capture_default_str();
    app.add_option("--tool-call-percent", o.tool_call_percent)->capture_default_str();
    app.add_option("--attachment-percent", o.attachment_percent)->capture_default_str();
    app.add_option("--malformed-per-mille", o.malformed_per_mille)->capture_default_str();
    app.add_flag("--no-edge-cases", no_edge, "only the random mix");
    bool with_schema = false;
    app.add_flag("--with-schema", with_schema,
                 "then apply chatstream's schema files (001 not started)");
    bool heavy = false;
    app.add_flag("--heavy", heavy,
                 "the heavy profile (issue 21): ~0.6 rows and ~1.2 KB per message");
    CLI11_PARSE(app, argc, argv);
    if (heavy)
    {
        auto const h = chatstream::bench::heavy_profile(o.messages, o.seed);
        o.tool_call_percent = h.tool_call_percent;
        o.attachment_percent = h.attachment_percent;
        o.heavy = true;
    }
    o.edge_cases = !no_edge;
    auto s = chatstream::bench::generate_legacy_db(out, o);
    if (with_schema)
    {
        chatstream::storage::database db(out, chatstream::storage::open_mode::read_write);
        chatstream::migrations::apply_schema(db);
        if (!db.is_postgres())
            db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    }
    fmt::print(
        R"({{"tool":"legacy_gen","out":"{}","seed":{},"messages":{},"conversations":{},"users":{},)"
        R"("with_tool_calls":{},"with_attachments":{},"malformed":{}}})"
        "\n",
        out, o.seed, s.messages, s.conversations, s.users, s.with_tool_calls, s.with_attachments,
        s.malformed);
    return 0;
}
#endif
