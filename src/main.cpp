// chatstream: composition root. Parses the command line and hands over to
// the subcommand; all behaviour lives in the module libraries.
#include "commands.hpp"

#include "chatstream/storage/database.hpp"

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace
{

int run_cli(int argc, char** argv)
{
    // A fixed mmap threshold: an answer's text (a string grown by doubling
    // to megabytes) then lives in its own mapping and goes back to the
    // system when the finished log frees it. glibc's default threshold
    // rises after each such free, so later big blocks come from the heap,
    // where freed memory stays in the RSS (issue 19: 50 never-reading
    // clients of 1M-token answers kept +160 MiB after release).
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    CLI::App app{"chatstream: streams AI generations over WebSockets and keeps them in SQL"};
    app.require_subcommand(1);
    app.fallthrough(); // global options (--log-level) may follow the subcommand
    app.set_version_flag("--version", "chatstream 0.1.0");
    std::string log_level = "info";
    app.add_option("--log-level", log_level, "trace|debug|info|warn|error")->capture_default_str();

    chatstream::app::action run;
    chatstream::app::register_serve_command(app, run);
    chatstream::app::register_migrate_command(app, run);
    chatstream::app::register_check_command(app, run);

    try
    {
        app.parse(argc, argv);
    }
    catch (CLI::ParseError const& e)
    {
        auto const code = app.exit(e);
        return code == 0 ? 0 : 2; // usage errors exit 2 (docs/design.md §3)
    }
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
    try
    {
        return run ? run() : 2;
    }
    catch (std::exception const& e)
    {
        spdlog::error("{}", e.what());
        return 1;
    }
}

} // namespace

int main(int argc, char** argv)
{
    // Setting up the command line can throw too (allocation, CLI11's
    // construction errors): nothing leaves main as an exception.
    try
    {
        return run_cli(argc, argv);
    }
    catch (std::exception const& e)
    {
        std::fprintf(stderr, "chatstream: %s\n", e.what());
        return 1;
    }
    catch (...)
    {
        std::fprintf(stderr, "chatstream: unknown error\n");
        return 1;
    }
}

namespace chatstream::app
{

void ensure_data_dir(std::string const& db_path)
{
    // A PostgreSQL URI names no directory to create.
    auto const where = storage::parse_location(db_path);
    if (where.dialect != storage::dialect::sqlite)
        return;
    auto const parent = std::filesystem::path(where.target).parent_path();
    if (!parent.empty())
        std::filesystem::create_directories(parent);
}

} // namespace chatstream::app
