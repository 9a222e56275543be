#pragma once
/// @file clock.hpp
/// Wall-clock time in the units the database stores, and the UTC calendar
/// arithmetic of usage windows (days, months).
#include <chrono>
#include <cstdint>
#include <string>

namespace chatstream::core
{

/// Wall-clock milliseconds since the Unix epoch: the unit of every stored timestamp.
inline std::int64_t now_ms() noexcept
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

/// The UTC calendar day of @p ms as `YYYY-MM-DD` (what `usage.day` stores).
std::string utc_day(std::int64_t ms);

/// The first day of @p ms's UTC month, `YYYY-MM-01`.
std::string utc_month_first_day(std::int64_t ms);

/// The next UTC midnight strictly after @p ms, in ms since the epoch.
std::int64_t next_utc_midnight_ms(std::int64_t ms);

/// 00:00 UTC of the first day of the month after @p ms's, in ms since the epoch.
std::int64_t next_utc_month_ms(std::int64_t ms);

/// @p ms as ISO 8601 UTC with seconds, e.g. `2026-11-27T00:00:00Z`.
std::string utc_iso(std::int64_t ms);

} // namespace chatstream::core
