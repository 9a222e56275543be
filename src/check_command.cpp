// `chatstream check`: whole-database consistency (after a crash, a soak run
// or a migration). Exit 1 when any invariant is violated.
#include "commands.hpp"

#include "chatstream/storage/consistency.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <memory>

namespace chatstream::app
{
namespace
{

struct check_args
{
    std::string db = "./data/chatstream.db";
    bool json = false;
    bool live = false;
};

int check(check_args const& a)
{
    auto const where = storage::parse_location(a.db);
    if (where.dialect == storage::dialect::sqlite && !std::filesystem::exists(where.target))
        throw std::runtime_error("no database at " + a.db);
    storage::database db(a.db, storage::open_mode::read_only);
    auto r = storage::check_consistency(db, !a.live);
    if (a.json)
    {
        std::string problems;
        for (auto const& p : r.problems)
        {
            if (!problems.empty())
                problems += ',';
            problems += '"';
            for (char c : p)
                problems += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
            problems += '"';
        }
        fmt::print(
            "{{\"ok\":{},\"conversations\":{},\"messages\":{},\"tool_calls\":{},\"attachments\":{},"
            "\"sources\":{},\"unfinished\":{},\"problems\":[{}]}}\n",
            r.problems.empty(), r.conversations, r.messages, r.tool_calls, r.attachments, r.sources,
            r.unfinished, problems);
    }
    else
    {
        fmt::print("{} conversations, {} messages, {} tool calls, {} attachments, {} sources, "
                   "{} unfinished\n",
                   r.conversations, r.messages, r.tool_calls, r.attachments, r.sources,
                   r.unfinished);
        for (auto const& p : r.problems)
            fmt::print("problem: {}\n", p);
        fmt::print("{}\n", r.problems.empty() ? "consistent" : "INCONSISTENT");
    }
    return r.problems.empty() ? 0 : 1;
}

} // namespace

void register_check_command(CLI::App& app, action& run)
{
    auto a = std::make_shared<check_args>();
    auto* cmd = app.add_subcommand("check", "verify database invariants (exit 1 on any violation)");
    cmd->add_option("--db", a->db, "SQLite path (or sqlite:PATH), or postgres://user@host/db")
        ->capture_default_str();
    cmd->add_flag("--json", a->json, "machine-readable output");
    cmd->add_flag("--live", a->live, "a server is running: unfinished messages are not problems");
    cmd->callback([&run, a] { run = [a] { return check(*a); }; });
}

} // namespace chatstream::app
