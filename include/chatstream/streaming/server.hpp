#pragma once
/// @file server.hpp
/// The HTTP + WebSocket server (DESIGN.md §6). Composition happens in src/.
#include <cstdint>
#include <optional>
#include <string>

namespace chatstream::streaming {

struct server_options
{
    std::string db_path = "./data/chatstream.db";
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::size_t io_threads = 0; ///< 0 = hardware concurrency
    std::string provider = "scripted";
    std::string upstream_url;
    std::optional<std::string> api_key;
    std::optional<std::string> jwt_secret; ///< absent = dev mode (no auth)
    int flush_ms = 50;
    int token_delay_ms = 0;
    std::int64_t daily_message_limit = 0; ///< 0 = unlimited
    double monthly_budget_usd = 0;        ///< 0 = unlimited
};

/// Runs the server until SIGINT/SIGTERM, then drains: stops accepting, lets
/// in-flight generations reach a committed terminal state, closes sessions,
/// commits queued writes. The schema must already be applied.
/// @return process exit code.
/// @throws std::exception on startup failure (bind, open database).
int run_server(server_options const& options);

} // namespace chatstream::streaming
