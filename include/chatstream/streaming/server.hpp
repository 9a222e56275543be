#pragma once
/// @file server.hpp
/// The HTTP + WebSocket server (docs/design.md §6). Composition happens in src/.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio
{
class io_context;
}

namespace chatstream::storage
{
class writer;
class read_pool;
} // namespace chatstream::storage

namespace chatstream::streaming
{

class provider;
class tool_registry;
class cluster;

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
    std::string model;           ///< default model of the openai provider (--model)
    bool think_tags = false;     ///< --think-tags (openai_options::think_tags)
    bool send_reasoning = false; ///< --send-reasoning (openai_options::send_reasoning)
    std::optional<std::string> api_key;
    std::optional<std::string> jwt_secret; ///< absent = dev mode (no auth)
    bool jwt_allow_no_exp = false; ///< --jwt-allow-no-exp: tokens without `exp` never expire
    int flush_ms = 50;
    int token_delay_ms = 0;
    std::int64_t daily_message_limit = 0; ///< 0 = unlimited
    double monthly_budget_usd = 0;        ///< 0 = unlimited
    /// generate/regenerate/retry per user per minute (0 = unlimited), in
    /// bursts of at most rate_limit_burst.
    double rate_limit_per_minute = 60;
    double rate_limit_burst = 20;
    bool auto_title = true; ///< one provider request per new conversation (--no-auto-title)
    /// Link previews of cited URLs (docs/design.md §9): --no-enrich turns
    /// them off; --enrich-allow-private lets them reach loopback and private
    /// addresses (tests only: it opens the server to SSRF).
    bool enrich = true;
    bool enrich_allow_private = false;

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
    std::string files_dir;                        ///< empty = `<db dir>/files`
    std::uint64_t max_upload_bytes = 25ull << 20; ///< --max-upload-mb
    std::vector<std::string> upload_mime_allow = default_upload_mime_allow();
    std::int64_t unattached_upload_ttl_s =
        24 * 3600;                   ///< uploads never attached are collected after this
    int file_sweep_interval_s = 300; ///< period of the file garbage collector

    /// The MIME types accepted by default (images, PDF, text, JSON, audio).
    static std::vector<std::string> default_upload_mime_allow();
};

/// The directory holding uploaded blobs for @p o (`--files-dir`, else
/// `files/` next to the database).
std::string files_directory(server_options const& o);

/// What a server runs on. The composition root (src/serve_command.cpp)
/// chooses and builds these, and keeps them alive longer than the server.
struct server_services
{
    storage::writer& writer;
    storage::read_pool& reads;
    provider& model;
    tool_registry const& tools;
    /// The other nodes on the same PostgreSQL database; null = this node
    /// serves its database alone, and the caller has already marked what a
    /// previous run left unfinished `interrupted`.
    streaming::cluster* cluster = nullptr;
};

/// The HTTP + WebSocket server (docs/design.md §6) on an io_context its caller
/// runs, on as many threads as it likes.
class server
{
public:
    virtual ~server() = default;

    /// Opens the port, joins the cluster (if any) and starts the file
    /// collector. @throws std::exception on failure (bind, cluster join).
    virtual void start() = 0;

    /// The port listened on (meaningful after start()).
    virtual std::uint16_t port() const = 0;

    /// Generations running on this node.
    virtual std::size_t active_generations() const = 0;

    /// Drains, BeastLounge's order: stops accepting, stops in-flight
    /// generations into a committed terminal state (`stopped`) and sends
    /// their `finish`, closes sessions (1001) once that is flushed. Then
    /// calls @p done on an I/O thread: every session is gone, or 10 s passed.
    /// Thread-safe; call once.
    virtual void shutdown(std::function<void()> done) = 0;
};

/// @p options.max_connections 0 is derived from the open-file limit here.
/// Nothing runs before start().
std::unique_ptr<server> make_server(boost::asio::io_context& ioc, server_options const& options,
                                    server_services const& services);

} // namespace chatstream::streaming
