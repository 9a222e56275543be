#pragma once
/// @file quota.hpp
/// Per-user limits on generations (issue 12, issue 9): the daily message
/// limit and monthly budget, checked against the `usage` table inside the
/// write that accepts a generation, and an in-memory rate limit against
/// floods.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace chatstream::storage
{
class database;
}

namespace chatstream::streaming
{

struct quota_limits
{
    std::int64_t daily_messages = 0; ///< generations per user per UTC day; 0 = unlimited
    double monthly_budget_usd = 0;   ///< USD per user per UTC month; 0 = unlimited
};

/// Why @p user_id may not start a generation at @p now_ms (a message that
/// says when the limit resets), or nullopt. Runs inside a writer job.
std::optional<std::string> quota_violation(storage::database& db, std::string const& user_id,
                                           std::int64_t now_ms, quota_limits const& limits);

/// Token bucket per user: @p per_minute generations per minute, bursts of
/// @p burst. Thread-safe; memory is bounded by pruning full buckets.
class rate_limiter
{
public:
    using clock = std::chrono::steady_clock;

    rate_limiter(double per_minute, double burst);

    /// Takes one token. @return nullopt when allowed, else how long until
    /// the next token.
    std::optional<std::chrono::milliseconds> acquire(std::string const& user_id,
                                                     clock::time_point now = clock::now());

    double per_minute() const noexcept { return per_minute_; }

private:
    struct bucket
    {
        double tokens;
        clock::time_point at;
    };
    void refill(bucket& b, clock::time_point now) const;

    double per_minute_;
    double burst_;
    std::mutex mutex_;
    std::unordered_map<std::string, bucket> buckets_;
};

} // namespace chatstream::streaming
