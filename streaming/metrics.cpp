#include "chatstream/streaming/metrics.hpp"

#include "chatstream/storage/writer.hpp"

#include <fmt/format.h>

namespace chatstream::streaming
{

void server_metrics::record_flush(std::uint64_t us) noexcept
{
    flushes.fetch_add(1, std::memory_order_relaxed);
    flush_latency_us_total.fetch_add(us, std::memory_order_relaxed);
    auto prev = flush_latency_us_max.load(std::memory_order_relaxed);
    while (prev < us &&
           !flush_latency_us_max.compare_exchange_weak(prev, us, std::memory_order_relaxed))
    {
    }
}

std::string server_metrics::render(storage::writer_stats const& w,
                                   std::size_t writer_queue_depth) const
{
    std::string out;
    auto metric = [&](char const* name, char const* type, char const* help, auto value)
    {
        fmt::format_to(std::back_inserter(out), "# HELP {0} {1}\n# TYPE {0} {2}\n{0} {3}\n", name,
                       help, type, value);
    };
    auto r = [](auto const& a) { return a.load(std::memory_order_relaxed); };
    metric("chatstream_connections", "gauge", "Open WebSocket and /api/chat (SSE) connections.",
           r(connections));
    metric("chatstream_connections_total", "counter", "WebSocket connections accepted.",
           r(connections_total));
    metric("chatstream_active_generations", "gauge", "Generations running or committing their end.",
           r(active_generations));
    metric("chatstream_generations_total", "counter", "Generations started.", r(generations_total));
    metric("chatstream_events_sent_total", "counter", "WebSocket frames written to clients.",
           r(events_sent));
    metric("chatstream_events_merged_total", "counter",
           "Text deltas merged into the previous one while a socket was backed up.",
           r(events_merged));
    metric("chatstream_stored_reads_total", "counter",
           "Pieces of a finished answer read back from the database for a reader that was behind.",
           r(stored_reads));
    metric("chatstream_queue_drops_total", "counter",
           "Connections closed because their outbound queue overflowed.", r(queue_drops));
    metric("chatstream_bad_requests_total", "counter", "Client frames answered with an error.",
           r(bad_requests));
    metric("chatstream_auth_failures_total", "counter", "Upgrades refused with 401.",
           r(auth_failures));
    metric("chatstream_tokens_expired_total", "counter",
           "WebSockets closed with 4401 when their token expired.", r(tokens_expired));
    metric("chatstream_titles_requested_total", "counter",
           "Auto-title requests sent to the provider.", r(titles_requested));
    fmt::format_to(std::back_inserter(out),
                   "# HELP chatstream_connections_refused_total Connections refused with 503 "
                   "before the upgrade, by reason.\n"
                   "# TYPE chatstream_connections_refused_total counter\n"
                   "chatstream_connections_refused_total{{reason=\"server\"}} {}\n"
                   "chatstream_connections_refused_total{{reason=\"user\"}} {}\n"
                   "chatstream_connections_refused_total{{reason=\"fd_limit\"}} {}\n",
                   r(refused_server_full), r(refused_user_full), r(refused_fd_pressure));
    metric("chatstream_origins_refused_total", "counter",
           "Browser requests refused with 403 for their Origin.", r(origins_refused));
    metric("chatstream_http_framing_refused_total", "counter",
           "Requests refused for their framing (400, 431, 501).", r(framing_refused));
    metric("chatstream_accept_errors_total", "counter",
           "accept() failures (EMFILE, ENFILE, ...); the acceptor backs off.", r(accept_errors));
    metric("chatstream_mutations_rate_limited_total", "counter",
           "Mutations refused by the per-user rate limit.", r(mutations_limited));
    metric("chatstream_partial_flushes_total", "counter", "partial_content flushes committed.",
           r(flushes));
    metric("chatstream_partial_flush_latency_seconds_sum", "counter",
           "Submit-to-commit time of flushes.",
           static_cast<double>(r(flush_latency_us_total)) / 1e6);
    metric("chatstream_partial_flush_latency_seconds_max", "gauge", "Slowest flush so far.",
           static_cast<double>(r(flush_latency_us_max)) / 1e6);
    metric("chatstream_db_commits_total", "counter", "Writer group commits.", r(w.commits));
    metric("chatstream_db_jobs_total", "counter", "Writer jobs.", r(w.jobs));
    metric("chatstream_db_failed_jobs_total", "counter", "Writer jobs that failed.",
           r(w.failed_jobs));
    metric("chatstream_db_commit_seconds_sum", "counter", "Time spent in writer batches.",
           static_cast<double>(r(w.total_commit_us)) / 1e6);
    metric("chatstream_db_last_commit_seconds", "gauge", "Duration of the last writer batch.",
           static_cast<double>(r(w.last_commit_us)) / 1e6);
    metric("chatstream_db_writer_queue_depth", "gauge", "Jobs waiting for the writer.",
           writer_queue_depth);
    return out;
}

} // namespace chatstream::streaming
