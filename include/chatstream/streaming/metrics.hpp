#pragma once
/// @file metrics.hpp
/// Server counters exported at /metrics (Prometheus text format).
#include <atomic>
#include <cstdint>
#include <string>

namespace chatstream::storage
{
struct writer_stats;
}

namespace chatstream::streaming
{

/// Process-wide counters; every member is safe to update from any thread.
struct server_metrics
{
    std::atomic<std::int64_t> connections{0}; ///< open WebSocket sessions
    std::atomic<std::uint64_t> connections_total{0};
    std::atomic<std::int64_t> active_generations{0};
    std::atomic<std::uint64_t> generations_total{0};
    std::atomic<std::uint64_t> events_sent{0};   ///< WebSocket frames written
    std::atomic<std::uint64_t> events_merged{0}; ///< deltas folded while a socket was backed up
    /// Pieces of a finished answer read back from its row for a reader that
    /// was behind when the log released its text (issue 19).
    std::atomic<std::uint64_t> stored_reads{0};
    std::atomic<std::uint64_t> queue_drops{0}; ///< sessions closed for outbound overflow
    std::atomic<std::uint64_t> bad_requests{0};
    std::atomic<std::uint64_t> flushes{0};                ///< partial_content flushes committed
    std::atomic<std::uint64_t> flush_latency_us_total{0}; ///< submit -> commit, summed
    std::atomic<std::uint64_t> flush_latency_us_max{0};
    std::atomic<std::uint64_t> auth_failures{0};
    std::atomic<std::uint64_t> tokens_expired{
        0}; ///< WebSockets closed with 4401 at their token's exp
    std::atomic<std::uint64_t> titles_requested{0};    ///< auto-title provider requests started
    std::atomic<std::uint64_t> refused_server_full{0}; ///< 503: --max-connections reached
    std::atomic<std::uint64_t> refused_user_full{0};   ///< 503: --max-connections-per-user reached
    std::atomic<std::uint64_t> refused_fd_pressure{0}; ///< 503: near the open-file limit
    std::atomic<std::uint64_t> origins_refused{0};     ///< 403: Origin not allowed
    std::atomic<std::uint64_t> framing_refused{0};     ///< 400/431/501 before routing
    std::atomic<std::uint64_t> accept_errors{0};       ///< accept() failures (EMFILE, ...)
    std::atomic<std::uint64_t> mutations_limited{0};   ///< mutations refused by the rate limit

    /// Records one flush that took @p us from submit to commit.
    void record_flush(std::uint64_t us) noexcept;

    /// The Prometheus exposition text, including the writer's counters.
    std::string render(storage::writer_stats const& writer, std::size_t writer_queue_depth) const;
};

} // namespace chatstream::streaming
