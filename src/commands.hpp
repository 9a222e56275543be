#pragma once
// Subcommands of the chatstream binary. Each registers its options on the
// CLI11 app and runs when selected; exit codes: 0 ok, 1 failure, 2 usage.
#include <CLI/CLI.hpp>

#include <functional>

namespace chatstream::app
{

/// Sets @p run to the action of the subcommand once parsing succeeded.
using action = std::function<int()>;

void register_serve_command(CLI::App& app, action& run);
void register_migrate_command(CLI::App& app, action& run);
void register_check_command(CLI::App& app, action& run);

/// Opens (creating parent directories) and schema-migrates @p db_path.
/// Shared by `serve --migrate` and `migrate up`. @throws on failure.
void ensure_data_dir(std::string const& db_path);

} // namespace chatstream::app
