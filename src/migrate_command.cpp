// `chatstream migrate ...`: schema and data migrations.
#include "commands.hpp"

#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>

namespace chatstream::app {
namespace {

struct migrate_args
{
    std::string db = "./data/chatstream.db";
    bool json = false;
};

int migrate_up(migrate_args const& a)
{
    ensure_data_dir(a.db);
    storage::database db(a.db, storage::open_mode::read_write);
    auto const kind = migrations::detect_kind(db);
    auto applied = migrations::apply_schema(db);
    fmt::print("database: {} ({}); schema migrations applied: {}\n", a.db, migrations::to_string(kind),
               applied.size());
    return 0;
}

int migrate_status(migrate_args const& a)
{
    storage::database db(a.db, storage::open_mode::read_write);
    auto status = migrations::read_schema_status(db);
    if (a.json)
    {
        std::string out = "{\"schema\":[";
        for (std::size_t i = 0; i < status.size(); ++i)
            out += fmt::format("{}{{\"version\":{},\"name\":\"{}\",\"applied\":{}}}", i ? "," : "",
                               status[i].version, status[i].name, status[i].applied);
        out += "]}";
        fmt::print("{}\n", out);
        return 0;
    }
    for (auto const& s : status)
        fmt::print("schema {:04d} {:<40} {}\n", s.version, s.name, s.applied ? "applied" : "pending");
    return 0;
}

} // namespace

void register_migrate_command(CLI::App& app, action& run)
{
    auto args = std::make_shared<migrate_args>();
    auto* migrate = app.add_subcommand("migrate", "schema and data migrations");
    migrate->add_option("--db", args->db, "database path")->capture_default_str();
    migrate->require_subcommand(1);
    auto* up = migrate->add_subcommand("up", "apply schema migrations, then run data migrations");
    up->callback([&run, args] { run = [args] { return migrate_up(*args); }; });
    auto* status = migrate->add_subcommand("status", "state of every migration");
    status->add_flag("--json", args->json, "machine-readable output");
    status->callback([&run, args] { run = [args] { return migrate_status(*args); }; });
}

} // namespace chatstream::app
