// Legacy database generator (see legacy_gen.hpp). Built as the `legacy_gen`
// tool (CHATSTREAM_LEGACY_GEN_MAIN) and compiled into the migration tests
// and benchmark.
//
//   legacy_gen --out PATH [--messages N] [--seed S] [--no-edge-cases]
#include "legacy_gen.hpp"

#include "chatstream/core/json.hpp"
#include "chatstream/core/utf16.hpp"
#include "chatstream/storage/database.hpp"

#include <fmt/format.h>

#include <array>
#include <filesystem>
#include <optional>
#include <vector>

namespace chatstream::bench {
namespace {

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
    for (int i = 0; i < 24; ++i) id += alphabet[r.below(32)];
    return id;
}

// Text fragments mixing ASCII, accents, CJK and astral emoji (surrogate
// pairs), so UTF-8 bytes, code points and UTF-16 units all differ.
constexpr std::array<char const*, 10> fragments = {
    "Sure, here is the answer. ", "Voilà, ça marche très bien ! ", "你好，世界。", "😀 done 🚀 ",
    "日本語のテキスト、", "Grüße aus Köln. ", "The weather today: ", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 math 𝔵 ",
    "한국어 문장입니다. ", "Let me check that for you. "};
constexpr std::array<char const*, 4> tool_names = {"weather", "calculator", "web_search", "datetime"};

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
        if (out.size() > 1) out += ',';
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
        if (c.text_position) out += fmt::format(",\"textPosition\":{}", *c.text_position);
        if (c.null_text_position) out += ",\"textPosition\":null";
        out += '}';
    }
    return out + "]";
}

std::string attachment_json(rng& r, int index, bool with_metadata)
{
    static constexpr std::array<char const*, 3> types = {"image", "file", "audio"};
    static constexpr std::array<char const*, 3> mimes = {"image/png", "application/pdf", "audio/mpeg"};
    auto const t = r.below(3);
    std::string out = fmt::format(R"({{"type":"{}","name":"{}","storageId":"{}","mimeType":"{}","size":{})",
                                  types[t], fmt::format("文件-{}-😀.{}", index, t == 0 ? "png" : t == 1 ? "pdf" : "mp3"),
                                  make_id(r, "kg"), mimes[t], 1000 + r.below(5'000'000));
    if (with_metadata)
        out += t == 0 ? fmt::format(R"(,"metadata":{{"width":{},"height":{},"prompt":"a cat 🐱","model":"dall-e-3"}})",
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
        if (boundaries) boundaries->push_back(static_cast<std::int64_t>(core::utf16_length(text)));
    }
    return text;
}

std::string arguments_for(rng& r, std::string const& tool)
{
    if (tool == "weather") return fmt::format(R"({{"city": "Zürich", "units": "metric", "days": {}}})", 1 + r.below(7));
    if (tool == "calculator") return fmt::format(R"({{"expression":"{} * {} + 1"}})", r.below(1000), r.below(1000));
    if (tool == "web_search") return R"({"query":"東京 天気 😀","limit":5})";
    return R"({"timezone":"Europe/Paris"})";
}

std::string result_for(rng& r, std::string const& tool)
{
    if (tool == "weather") return fmt::format(R"({{"temperature":{}.5,"condition":"sunny ☀️"}})", r.below(35));
    if (tool == "calculator") return fmt::format(R"({{"result":{}}})", r.below(1'000'000));
    if (tool == "web_search") return R"({"results":[{"title":"天気","url":"https://example.com/a?b=1"}]})";
    return R"({"iso":"2024-05-01T12:00:00+02:00"})";
}

// Tool calls for an assistant message whose text is being generated.
std::vector<call> random_calls(rng& r, std::string const& content, std::int64_t at, int count)
{
    std::vector<call> calls;
    auto const len = static_cast<std::int64_t>(core::utf16_length(content));
    for (int i = 0; i < count; ++i)
    {
        call c;
        c.id = "call_" + make_id(r, "");
        c.name = tool_names[r.below(tool_names.size())];
        c.arguments = arguments_for(r, c.name);
        c.result = result_for(r, c.name);
        c.timestamp = at + 10 * (i + 1);
        c.text_position = len ? static_cast<std::int64_t>(r.below(static_cast<std::uint64_t>(len) + 1)) : 0;
        calls.push_back(std::move(c));
    }
    return calls;
}

// One message per edge case of issue 4; index beyond the list = none.
bool edge_case(int index, message& m, rng& r, legacy_gen_stats& stats)
{
    auto at = m.created_at;
    auto base_call = [&](char const* id, char const* args) {
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
    case 1: m.content = "all NULL"; break; // every array NULL
    case 2:
        m.content = "all empty arrays";
        m.attachments = m.tool_calls = m.partial_tool_calls = "[]";
        break;
    case 3: // duplicate id in tool_calls: the last occurrence wins
        m.content = "duplicate ids";
        m.tool_calls = render_calls({base_call("call_dup", R"({"v":1})"), base_call("call_other", "{}"),
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
        while (blob.size() < 200 * 1024) blob += "lorem ipsum 😀 ";
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
        m.attachments = "[" + attachment_json(r, 0, true) + "," + attachment_json(r, 1, false) + "," +
                        attachment_json(r, 2, true) + "]";
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
    default: return false;
    }
    return true;
}

} // namespace

char const* legacy_schema_sql()
{
    return R"sql(
CREATE TABLE users(id TEXT PRIMARY KEY, external_id TEXT UNIQUE, name TEXT, created_at INTEGER NOT NULL);
CREATE TABLE conversations(id TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users(id), title TEXT NOT NULL DEFAULT 'New Chat', model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, last_message_at INTEGER);
CREATE TABLE messages(id TEXT PRIMARY KEY, conversation_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL REFERENCES users(id), role TEXT NOT NULL CHECK(role IN ('user','assistant','system')), content TEXT NOT NULL DEFAULT '', partial_content TEXT, status TEXT NOT NULL, model TEXT, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, attachments TEXT, tool_calls TEXT, partial_tool_calls TEXT);
CREATE INDEX messages_by_conversation ON messages(conversation_id, created_at);
)sql";
}

legacy_gen_stats generate_legacy_db(std::string const& path, legacy_gen_options const& o)
{
    for (auto const* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
    legacy_gen_stats stats;
    storage::database_options dbo;
    dbo.sync = storage::sync_mode::off; // a generated file; durability is irrelevant
    storage::database db(path, storage::open_mode::read_write, dbo);
    db.exec(legacy_schema_sql());

    rng r{o.seed * 0x2545f4914f6cdd1dULL + 1};
    std::int64_t const epoch = 1'700'000'000'000;
    auto& ins_user = db.prepare("INSERT INTO users(id, external_id, name, created_at) VALUES(?,?,?,?)");
    auto& ins_conv = db.prepare("INSERT INTO conversations(id, user_id, title, model, created_at, updated_at, "
                                "last_message_at) VALUES(?,?,?,?,?,?,?)");
    auto& ins_msg = db.prepare(
        "INSERT INTO messages(id, conversation_id, user_id, role, content, partial_content, status, model, created_at, "
        "updated_at, attachments, tool_calls, partial_tool_calls) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?)");
    auto bind_opt = [](storage::statement& s, int i, std::optional<std::string> const& v) {
        if (v)
            s.bind(i, *v);
        else
            s.bind(i);
    };

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
                ins_user.reset();
                ins_user.bind(1, user_id);
                ins_user.bind(2, "ext|" + user_id);
                ins_user.bind(3, fmt::format("User {} 😀", stats.users));
                ins_user.bind(4, at);
                ins_user.exec();
                ++stats.users;
            }
            conversation_id = make_id(r, "cv");
            ins_conv.reset();
            ins_conv.bind(1, conversation_id);
            ins_conv.bind(2, user_id);
            ins_conv.bind(3, fmt::format("Chat {} 你好", conv_index));
            ins_conv.bind(4, "gpt-4o");
            ins_conv.bind(5, at);
            ins_conv.bind(6, at + per_conv * 1000);
            ins_conv.bind(7, at + per_conv * 1000);
            ins_conv.exec();
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
            auto none = [&]() -> std::optional<std::string> {
                if (r.percent(50)) return std::nullopt;
                return std::string("[]");
            };
            m.attachments = none();
            m.tool_calls = none();
            m.partial_tool_calls = none();
            m.role = (i % per_conv) % 2 == 0 ? "user" : "assistant";
            if (m.role == "user")
            {
                m.content = random_text(r, 1 + r.below(3));
                if (r.percent(o.attachment_percent))
                {
                    auto const n = 1 + static_cast<int>(r.below(2));
                    std::string a = "[";
                    for (int k = 0; k < n; ++k) a += (k ? "," : "") + attachment_json(r, k, r.percent(50));
                    m.attachments = a + "]";
                }
            }
            else
            {
                m.content = random_text(r, 2 + r.below(6));
                if (r.percent(o.tool_call_percent))
                    m.tool_calls = render_calls(random_calls(r, m.content, at, 1 + static_cast<int>(r.below(3))));
                if (r.percent(o.partial_percent))
                {
                    auto calls = random_calls(r, m.content, at, 1 + static_cast<int>(r.below(2)));
                    for (auto& c : calls) c.result.reset();
                    m.partial_tool_calls = render_calls(calls);
                    m.status = "generating";
                    m.partial_content = m.content;
                }
            }
            if (static_cast<int>(r.below(1000)) < o.malformed_per_mille)
            {
                // Truncated JSON, the classic damage of a crashed writer.
                auto& victim = m.tool_calls && m.tool_calls->size() > 2 ? m.tool_calls : m.attachments;
                victim = victim && victim->size() > 2 ? victim->substr(0, victim->size() / 2) : std::string("[{");
                ++stats.malformed;
            }
        }
        if (m.attachments && m.attachments->size() > 2) ++stats.with_attachments;
        if ((m.tool_calls && m.tool_calls->size() > 2) || (m.partial_tool_calls && m.partial_tool_calls->size() > 2))
            ++stats.with_tool_calls;

        ins_msg.reset();
        ins_msg.bind(1, m.id);
        ins_msg.bind(2, m.conversation_id);
        ins_msg.bind(3, m.user_id);
        ins_msg.bind(4, m.role);
        ins_msg.bind(5, m.content);
        bind_opt(ins_msg, 6, m.partial_content);
        ins_msg.bind(7, m.status);
        ins_msg.bind(8, "gpt-4o");
        ins_msg.bind(9, m.created_at);
        ins_msg.bind(10, m.created_at);
        bind_opt(ins_msg, 11, m.attachments);
        bind_opt(ins_msg, 12, m.tool_calls);
        bind_opt(ins_msg, 13, m.partial_tool_calls);
        ins_msg.exec();
        ++stats.messages;
    }
    tx.commit();
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    return stats;
}

} // namespace chatstream::bench

#ifdef CHATSTREAM_LEGACY_GEN_MAIN
#include <CLI/CLI.hpp>

int main(int argc, char** argv)
{
    CLI::App app{"legacy_gen: writes a deterministic legacy chatstream database (DESIGN.md §5)"};
    std::string out;
    chatstream::bench::legacy_gen_options o;
    bool no_edge = false;
    app.add_option("--out", out, "database file to create (replaced)")->required();
    app.add_option("--messages", o.messages, "number of messages")->capture_default_str();
    app.add_option("--seed", o.seed, "random seed")->capture_default_str();
    app.add_option("--tool-call-percent", o.tool_call_percent)->capture_default_str();
    app.add_option("--attachment-percent", o.attachment_percent)->capture_default_str();
    app.add_option("--malformed-per-mille", o.malformed_per_mille)->capture_default_str();
    app.add_flag("--no-edge-cases", no_edge, "only the random mix");
    CLI11_PARSE(app, argc, argv);
    o.edge_cases = !no_edge;
    auto s = chatstream::bench::generate_legacy_db(out, o);
    fmt::print(R"({{"tool":"legacy_gen","out":"{}","seed":{},"messages":{},"conversations":{},"users":{},)"
               R"("with_tool_calls":{},"with_attachments":{},"malformed":{}}})"
               "\n",
               out, o.seed, s.messages, s.conversations, s.users, s.with_tool_calls, s.with_attachments, s.malformed);
    return 0;
}
#endif
