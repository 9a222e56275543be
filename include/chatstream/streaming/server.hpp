#pragma once
/// @file server.hpp
/// The HTTP + WebSocket server (DESIGN.md §6). Composition happens in src/.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::storage
{
class writer;
}

namespace chatstream::streaming
{

struct server_options
{
    std::string db_path = "./data/chatstream.db"; ///< SQLite path, or a postgres:// URI
    /// PostgreSQL only (docs/scaling.md): this node's name in the `nodes`
    /// table, stable across restarts so a restart recovers its own
    /// generations at once (empty = host:port), and its lease.
    std::string node_id;
    int node_lease_s = 10;
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::size_t io_threads = 0; ///< 0 = hardware concurrency
    std::string provider = "scripted";
    std::string upstream_url;
    std::string model; ///< default model of the openai provider (--model)
    bool think_tags = false;     ///< --think-tags (openai_options::think_tags)
    bool send_reasoning = false; ///< --send-reasoning (openai_options::send_reasoning)
    std::optional<std::string> api_key;
    std::optional<std::string> jwt_secret; ///< absent = dev mode (no auth)
    bool jwt_allow_no_exp = false;         ///< --jwt-allow-no-exp: tokens without `exp` never expire
    int flush_ms = 50;
    int token_delay_ms = 0;
    std::int64_t daily_message_limit = 0; ///< 0 = unlimited
    double monthly_budget_usd = 0;        ///< 0 = unlimited
    /// generate/regenerate/retry per user per minute (0 = unlimited), in
    /// bursts of at most rate_limit_burst.
    double rate_limit_per_minute = 60;
    double rate_limit_burst = 20;
    bool auto_title = true; ///< one provider request per new conversation (--no-auto-title)

    // Admission and exposure (docs/protocol.md, "Limits and admission").
    /// Open WebSocket and /api/chat stream connections; 0 = derived from
    /// RLIMIT_NOFILE at startup (soft limit minus a reserve for the database,
    /// uploads and upstream sockets).
    std::size_t max_connections = 0;
    std::size_t max_connections_per_user = 64;
    /// Origins besides the server's own that browsers may use /ws and /api
    /// from (--allowed-origins, exact scheme://host[:port]).
    std::vector<std::string> allowed_origins;
    /// When set, /metrics needs `Authorization: Bearer <token>` (--metrics-token-env).
    std::optional<std::string> metrics_token;
    /// Mutations (create, rename, delete, ...) per user per minute, in bursts
    /// of at most mutation_burst (0 = unlimited).
    double mutation_rate_per_minute = 600;
    double mutation_burst = 120;

    // Uploads (POST/GET /api/files, docs/files.md).
    std::string files_dir;                          ///< empty = `<db dir>/files`
    std::uint64_t max_upload_bytes = 25ull << 20;   ///< --max-upload-mb
    std::vector<std::string> upload_mime_allow = default_upload_mime_allow();
    std::int64_t unattached_upload_ttl_s = 24 * 3600; ///< uploads never attached are collected after this
    int file_sweep_interval_s = 300;                ///< period of the file garbage collector

    /// The MIME types accepted by default (images, PDF, text, JSON, audio).
    static std::vector<std::string> default_upload_mime_allow();
};

/// The directory holding uploaded blobs for @p o (`--files-dir`, else
/// `files/` next to the database).
std::string files_directory(server_options const& o);

/// Extension points of the composition root (src/), e.g. the online backfill
/// of `serve --migrate`, which must share the server's single writer.
struct server_hooks
{
    /// Called once the writer exists (after restart recovery), before the
    /// port is opened. Runs on the calling thread; may throw to abort startup.
    std::function<void(storage::writer&)> on_writer_ready;
    /// Called after the I/O threads have stopped and before the writer drains
    /// and closes: stop whatever on_writer_ready started. Must not throw.
    std::function<void()> on_stopping;
};

/// Runs the server until SIGINT/SIGTERM, then drains: stops accepting, stops
/// in-flight generations into a committed terminal state (`stopped`), sends
/// their `finish`, closes sessions (1001), commits queued writes. A second
/// signal stops at once. The schema must already be applied.
/// Startup marks messages left pending/generating by a crash `interrupted`.
/// @return process exit code.
/// @throws std::exception on startup failure (bind, open database, provider).
int run_server(server_options const& options, server_hooks const& hooks = {});

} // namespace chatstream::streaming
