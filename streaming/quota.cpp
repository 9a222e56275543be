#include "chatstream/streaming/quota.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/usage.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>

namespace chatstream::streaming
{

std::optional<std::string> quota_violation(storage::database& db, std::string const& user_id,
                                           std::int64_t now_ms, quota_limits const& limits)
{
    if (limits.daily_messages > 0)
    {
        auto const today = core::utc_day(now_ms);
        if (storage::usage::messages_on(db, user_id, today) >= limits.daily_messages)
            return "daily message limit of " + std::to_string(limits.daily_messages) +
                   " reached; it resets at " + core::utc_iso(core::next_utc_midnight_ms(now_ms));
    }
    if (limits.monthly_budget_usd > 0)
    {
        auto const spent = storage::usage::cost_between(
            db, user_id, core::utc_month_first_day(now_ms), core::utc_day(now_ms));
        if (spent >= limits.monthly_budget_usd)
        {
            char buf[160];
            std::snprintf(buf, sizeof buf,
                          "monthly budget of $%.2f reached ($%.4f spent); it resets at %s",
                          limits.monthly_budget_usd, spent,
                          core::utc_iso(core::next_utc_month_ms(now_ms)).c_str());
            return std::string(buf);
        }
    }
    return std::nullopt;
}

//------------------------------------------------------------------------------

rate_limiter::rate_limiter(double per_minute, double burst)
    : per_minute_(per_minute), burst_(std::max(1.0, burst))
{
}

void rate_limiter::refill(bucket& b, clock::time_point now) const
{
    auto const minutes = std::chrono::duration<double, std::ratio<60>>(now - b.at).count();
    b.tokens = std::min(burst_, b.tokens + std::max(0.0, minutes) * per_minute_);
    b.at = now;
}

std::optional<std::chrono::milliseconds> rate_limiter::acquire(std::string const& user_id,
                                                               clock::time_point now)
{
    if (per_minute_ <= 0)
        return std::nullopt;
    std::lock_guard lock(mutex_);
    // Full buckets carry no information: drop them when the map grows, so a
    // stream of one-off users cannot grow it without bound.
    if (buckets_.size() > 100'000)
        for (auto it = buckets_.begin(); it != buckets_.end();)
        {
            refill(it->second, now);
            it = it->second.tokens >= burst_ ? buckets_.erase(it) : std::next(it);
        }
    auto [it, fresh] = buckets_.try_emplace(user_id, bucket{burst_, now});
    auto& b = it->second;
    if (!fresh)
        refill(b, now);
    if (b.tokens >= 1.0)
    {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    auto const wait_minutes = (1.0 - b.tokens) / per_minute_;
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(wait_minutes * 60'000)));
}

} // namespace chatstream::streaming
