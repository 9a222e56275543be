// UTC calendar arithmetic with <chrono>'s civil calendar (C++20); no time
// zone database is needed because every window is in UTC.
#include "chatstream/core/clock.hpp"

#include <cstdio>

namespace chatstream::core
{
namespace
{

using namespace std::chrono;

sys_days day_of(std::int64_t ms)
{
    return floor<days>(sys_time<milliseconds>(milliseconds(ms)));
}

std::int64_t to_ms(sys_days d)
{
    return duration_cast<milliseconds>(d.time_since_epoch()).count();
}

std::string format_day(year_month_day ymd)
{
    char buf[16];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
    return buf;
}

} // namespace

std::string utc_day(std::int64_t ms)
{
    return format_day(year_month_day(day_of(ms)));
}

std::string utc_month_first_day(std::int64_t ms)
{
    year_month_day const ymd(day_of(ms));
    return format_day(ymd.year() / ymd.month() / 1);
}

std::int64_t next_utc_midnight_ms(std::int64_t ms)
{
    return to_ms(day_of(ms) + days(1));
}

std::int64_t next_utc_month_ms(std::int64_t ms)
{
    year_month_day const ymd(day_of(ms));
    return to_ms(sys_days((ymd.year() / ymd.month() / 1) + months(1)));
}

std::string utc_iso(std::int64_t ms)
{
    auto const d = day_of(ms);
    auto const secs = (ms - to_ms(d)) / 1000;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%sT%02lld:%02lld:%02lldZ",
                  format_day(year_month_day(d)).c_str(), static_cast<long long>(secs / 3600),
                  static_cast<long long>(secs / 60 % 60), static_cast<long long>(secs % 60));
    return buf;
}

} // namespace chatstream::core
