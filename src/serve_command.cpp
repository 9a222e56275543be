// `chatstream serve`: HTTP + WebSocket server.
#include "commands.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/migrations/runner.hpp"
#include "chatstream/migrations/schema_migrator.hpp"
#include "chatstream/storage/database.hpp"
#include "chatstream/storage/read_pool.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/cluster.hpp"
#include "chatstream/streaming/openai_provider.hpp"
#include "chatstream/streaming/provider.hpp"
#include "chatstream/streaming/server.hpp"
#include "chatstream/streaming/tools.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

namespace chatstream::app
{
namespace
{

struct serve_args
{
    streaming::server_options options;
    bool migrate = false;
    std::string api_key_env;
    std::string jwt_secret_env;
    std::string metrics_token_env;
    double max_upload_mb = 25;
};

int run(streaming::server_options const& options, bool migrate);

/// The one place that chooses the model implementation.
std::unique_ptr<streaming::provider> make_provider(streaming::server_options const& options,
                                                   streaming::tool_registry const& tools)
{
    if (options.provider == "openai")
    {
        streaming::openai_options o;
        o.base_url = options.upstream_url;
        o.api_key = options.api_key;
        o.model = options.model;
        o.tools = tools.definitions();
        o.think_tags = options.think_tags;
        o.send_reasoning = options.send_reasoning;
        return streaming::make_openai_provider(o);
    }
    return streaming::make_scripted_provider({std::chrono::milliseconds(options.token_delay_ms)});
}

streaming::cluster_options cluster_options_for(streaming::server_options const& options)
{
    streaming::cluster_options co;
    co.node_id = options.node_id;
    co.address = options.host + ":" + std::to_string(options.port);
    if (co.node_id.empty())
        co.node_id = options.port
                         ? boost::asio::ip::host_name() + ":" + std::to_string(options.port)
                         : core::new_id();
    co.lease = std::chrono::seconds(options.node_lease_s);
    co.heartbeat = co.lease / 5;
    return co;
}

int serve(serve_args& a)
{
    ensure_data_dir(a.options.db_path);
    a.options.max_upload_bytes = static_cast<std::uint64_t>(a.max_upload_mb * 1024 * 1024);
    {
        storage::database db(a.options.db_path, storage::open_mode::read_write);
        auto const kind = migrations::detect_kind(db);
        // A brand-new database gets its schema without asking: that is what
        // the README's one-command start relies on. Anything else needs
        // --migrate or `chatstream migrate up`, so upgrades are deliberate.
        if (a.migrate || kind == migrations::database_kind::empty)
            migrations::apply_schema(db);
        else
        {
            migrations::check_schema_checksums(db);
            for (auto const& s : migrations::read_schema_status(db))
                if (!s.applied)
                    throw std::runtime_error(
                        "schema migration " + s.name +
                        " is pending; run `chatstream migrate up` or pass --migrate");
        }
        if (migrations::detect_kind(db) != migrations::database_kind::managed)
            throw std::runtime_error(
                "database " + a.options.db_path +
                " is not migrated; run `chatstream migrate up` or pass --migrate");
        // A killed offline `migrate up` dropped these indexes; without them
        // every lookup by conversation or user scans the table.
        migrations::restore_deferred_indexes(db);
    }
    if (!a.api_key_env.empty())
        if (char const* v = std::getenv(a.api_key_env.c_str()))
            a.options.api_key = v;
    if (!a.jwt_secret_env.empty())
    {
        char const* v = std::getenv(a.jwt_secret_env.c_str());
        if (!v || !*v)
            throw std::runtime_error("--jwt-secret-env " + a.jwt_secret_env + " is not set");
        a.options.jwt_secret = v;
    }
    if (!a.metrics_token_env.empty())
    {
        char const* v = std::getenv(a.metrics_token_env.c_str());
        if (!v || !*v)
            throw std::runtime_error("--metrics-token-env " + a.metrics_token_env + " is not set");
        a.options.metrics_token = v;
    }
    for (auto const& origin : a.options.allowed_origins)
        if (origin == "*")
            throw std::runtime_error("--allowed-origins takes exact origins; '*' is not accepted");
    if (a.options.provider == "openai" && a.options.upstream_url.empty())
        throw std::runtime_error("--provider openai needs --upstream-url");
    // --model names the upstream's model; the scripted provider has none.
    if (a.options.provider != "openai")
        a.options.model.clear();
    return run(a.options, a.migrate);
}

/// The composition root: builds the services, decides once whether this
/// node shares its database with others, and owns the threads and signals.
int run(streaming::server_options const& options, bool migrate)
{
    namespace net = boost::asio;
    auto const threads =
        options.io_threads ? options.io_threads : std::max(1u, std::thread::hardware_concurrency());
    storage::writer writer(options.db_path);
    bool const clustered =
        storage::serves_several_nodes(storage::parse_location(options.db_path).dialect);
    // Restart recovery before the first client: nothing may stay
    // "generating". With several nodes, others may be generating: the
    // cluster recovers only the generations of dead nodes (cluster::start).
    if (!clustered)
    {
        std::size_t recovered = 0;
        writer.run_sync(
            [&](storage::database& db)
            { recovered = storage::messages::interrupt_unfinished(db, core::now_ms()); });
        if (recovered)
            spdlog::warn("marked {} unfinished message(s) from a previous run as interrupted",
                         recovered);
    }
    storage::read_pool reads(options.db_path, std::max<std::size_t>(2, threads));
    auto tools = streaming::tool_registry::with_builtins();
    streaming::add_lookup_tool(tools, reads);
    auto const model = make_provider(options, tools);

    net::io_context ioc(static_cast<int>(threads));
    std::optional<streaming::cluster> peers;
    if (clustered)
        peers.emplace(ioc, writer, reads, options.db_path, cluster_options_for(options));
    auto server = streaming::make_server(ioc, options,
                                         {writer, reads, *model, tools, peers ? &*peers : nullptr});
    server->start();
    // `serve --migrate`: data migration 001 runs on the server's own writer
    // while it serves; reads fall back to the legacy arrays meanwhile.
    std::unique_ptr<migrations::online_backfill> backfill;
    if (migrate)
    {
        migrations::online_options o;
        o.on_progress = migrations::progress_reporter(false);
        o.on_done = [](std::string const& error)
        {
            if (error.empty())
                spdlog::info("online backfill finished");
            else
                spdlog::error("online backfill failed: {}", error);
        };
        backfill = std::make_unique<migrations::online_backfill>(writer, std::move(o));
        backfill->start();
    }
    spdlog::info("listening on http://{}:{} ({} I/O threads, provider {})", options.host,
                 server->port(), threads, options.provider);

    // SIGINT/SIGTERM drains (server::shutdown); a second signal stops at once.
    net::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait(
        [&](boost::system::error_code ec, int sig)
        {
            if (ec)
                return;
            spdlog::info("signal {}: draining ({} active generations)", sig,
                         server->active_generations());
            signals.async_wait(
                [&](boost::system::error_code ec2, int)
                {
                    if (!ec2)
                        ioc.stop();
                });
            server->shutdown([&] { ioc.stop(); });
        });

    std::vector<std::thread> pool;
    for (std::size_t i = 1; i < threads; ++i)
        pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool)
        t.join();
    // Stop the pools while the io_context still exists: their last
    // completions post to strands of it (and are simply never run). The
    // backfill's batch in flight completes and its checkpoint stays, so the
    // next start resumes from it; then the writer commits what is queued.
    if (peers)
        peers->stop();
    reads.stop();
    if (backfill)
        backfill->stop();
    writer.stop();
    spdlog::info("stopped; writer committed {} batches", writer.stats().commits.load());
    return 0;
}

} // namespace

void register_serve_command(CLI::App& app, action& run)
{
    auto a = std::make_shared<serve_args>();
    auto& o = a->options;
    auto* cmd = app.add_subcommand("serve", "run the HTTP + WebSocket server");
    cmd->add_option("--db", o.db_path, "SQLite path (or sqlite:PATH), or postgres://user@host/db")
        ->capture_default_str();
    cmd->add_option("--node-id", o.node_id,
                    "PostgreSQL: this node's stable name (default host:port)");
    cmd->add_option("--node-lease", o.node_lease_s,
                    "PostgreSQL: seconds without a heartbeat after which a node's generations are "
                    "interrupted")
        ->check(CLI::Range(2, 3600))
        ->capture_default_str();
    cmd->add_option("--host", o.host, "listen address")->capture_default_str();
    cmd->add_option("--port", o.port, "listen port (0 = any free port)")->capture_default_str();
    cmd->add_option("--threads", o.io_threads, "I/O threads (0 = hardware concurrency)");
    cmd->add_flag("--migrate", a->migrate, "apply migrations before listening");
    cmd->add_option("--provider", o.provider, "scripted|openai")
        ->check(CLI::IsMember({"scripted", "openai"}))
        ->capture_default_str();
    cmd->add_option("--upstream-url", o.upstream_url, "OpenAI-compatible base URL");
    cmd->add_option("--model", o.model, "model for --provider openai (default: the server's own)");
    cmd->add_flag("--think-tags", o.think_tags,
                  "openai: split <think>...</think> in the content out as reasoning");
    cmd->add_flag("--send-reasoning", o.send_reasoning,
                  "openai: send earlier answers' reasoning back upstream (reasoning_content)");
    cmd->add_option("--api-key-env", a->api_key_env,
                    "environment variable holding the upstream API key");
    cmd->add_option("--jwt-secret-env", a->jwt_secret_env,
                    "environment variable holding the HS256 secret (absent = dev mode)");
    cmd->add_flag("--jwt-allow-no-exp", o.jwt_allow_no_exp,
                  "accept tokens without an `exp` claim (they never expire)");
    cmd->add_option("--flush-ms", o.flush_ms, "partial_content flush interval")
        ->check(CLI::Range(1, 60000))
        ->capture_default_str();
    cmd->add_option("--token-delay-ms", o.token_delay_ms, "scripted provider per-token delay")
        ->check(CLI::Range(0, 60000));
    cmd->add_option("--daily-message-limit", o.daily_message_limit,
                    "generations per user per UTC day (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--monthly-budget", o.monthly_budget_usd,
                    "USD per user per UTC month, a hard stop (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--rate-limit", o.rate_limit_per_minute,
                    "generations per user per minute (0 = unlimited)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--rate-burst", o.rate_limit_burst,
                    "generations a user may start at once before --rate-limit applies")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    cmd->add_flag("!--no-enrich", o.enrich, "no link previews (OpenGraph fetches) of cited URLs");
    cmd->add_flag("--enrich-allow-private", o.enrich_allow_private,
                  "let link previews reach loopback/private addresses (tests only: SSRF)");
    cmd->add_flag("!--no-auto-title", o.auto_title,
                  "do not ask the provider for a title after a new conversation's first answer");
    cmd->add_option("--max-connections", o.max_connections,
                    "open WebSocket and /api/chat connections (0 = from the open-file limit)");
    cmd->add_option("--max-connections-per-user", o.max_connections_per_user,
                    "open WebSocket and /api/chat connections per user")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
        ->capture_default_str();
    cmd->add_option("--allowed-origins", o.allowed_origins,
                    "browser origins besides the server's own allowed on /ws and /api "
                    "(comma-separated scheme://host[:port])")
        ->delimiter(',');
    cmd->add_option("--metrics-token-env", a->metrics_token_env,
                    "environment variable holding a bearer token /metrics then requires");
    cmd->add_option("--mutation-rate", o.mutation_rate_per_minute,
                    "mutations per user per minute (0 = unlimited)")
        ->check(CLI::Range(0.0, 1e9))
        ->capture_default_str();
    cmd->add_option("--mutation-burst", o.mutation_burst, "mutations per user in one burst")
        ->check(CLI::Range(1.0, 1e9))
        ->capture_default_str();
    cmd->add_option("--files-dir", o.files_dir, "uploaded files (default: files/ next to --db)");
    cmd->add_option("--max-upload-mb", a->max_upload_mb, "largest accepted upload, MiB")
        ->check(CLI::Range(0.0, 1024.0 * 1024))
        ->capture_default_str();
    cmd->add_option("--upload-mime-allow", o.upload_mime_allow,
                    "accepted upload MIME types (comma-separated)")
        ->delimiter(',')
        ->capture_default_str();
    cmd->add_option("--unattached-upload-ttl", o.unattached_upload_ttl_s,
                    "seconds an upload may stay unattached before it is collected")
        ->check(CLI::Range(std::int64_t{0}, std::int64_t{10} * 365 * 86400))
        ->capture_default_str();
    cmd->add_option("--file-sweep-interval", o.file_sweep_interval_s,
                    "seconds between garbage collections of unreferenced files")
        ->check(CLI::Range(1, 86400))
        ->capture_default_str();
    cmd->callback([&run, a] { run = [a] { return serve(*a); }; });
}

} // namespace chatstream::app
