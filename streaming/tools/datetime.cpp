// datetime tool support: local time of a zone without touching TZ/localtime
// (process-global, not thread-safe). GCC 12's libstdc++ has no
// std::chrono::tzdb, so IANA zones are read from the system's TZif files.
#include "chatstream/streaming/tools.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <vector>

namespace chatstream::streaming
{
namespace
{

struct local_type
{
    std::int32_t offset = 0;
    std::string abbreviation;
};

std::string offset_text(std::int32_t seconds)
{
    char const sign = seconds < 0 ? '-' : '+';
    auto const a = seconds < 0 ? -seconds : seconds;
    return fmt::format("{}{:02}:{:02}", sign, a / 3600, (a / 60) % 60);
}

// "UTC", "GMT", "Z", "+05:30", "-3", "UTC+2", "GMT-03:00", "UTC+0530".
std::optional<local_type> fixed_zone(std::string_view z)
{
    if (z == "UTC" || z == "GMT" || z == "Z" || z == "Etc/UTC")
        return local_type{0, "UTC"};
    if (z.starts_with("UTC") || z.starts_with("GMT"))
        z.remove_prefix(3);
    if (z.empty() || (z[0] != '+' && z[0] != '-'))
        return std::nullopt;
    int const sign = z[0] == '-' ? -1 : 1;
    z.remove_prefix(1);
    int hours = 0, minutes = 0;
    auto r = std::from_chars(z.data(), z.data() + z.size(), hours);
    if (r.ec != std::errc{})
        return std::nullopt;
    auto digits = static_cast<std::size_t>(r.ptr - z.data());
    std::string_view rest = z.substr(digits);
    if (digits == 4 && rest.empty()) // +0530
    {
        minutes = hours % 100;
        hours /= 100;
    }
    else if (!rest.empty())
    {
        if (rest[0] != ':' || rest.size() != 3)
            return std::nullopt;
        auto m = std::from_chars(rest.data() + 1, rest.data() + rest.size(), minutes);
        if (m.ec != std::errc{} || m.ptr != rest.data() + rest.size())
            return std::nullopt;
    }
    if (digits > 4 || hours > 14 || minutes > 59)
        return std::nullopt;
    auto const offset = sign * (hours * 3600 + minutes * 60);
    return local_type{offset, "UTC" + offset_text(offset)};
}

bool safe_zone_name(std::string_view z)
{
    if (z.empty() || z.size() > 64 || z.front() == '/' || z.find("..") != std::string_view::npos)
        return false;
    for (char c : z)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '-' &&
            c != '+')
            return false;
    return true;
}

std::int64_t be(unsigned char const* p, int n)
{
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i)
        v = (v << 8) | p[i];
    // sign-extend
    if (n < 8 && (v >> (n * 8 - 1)) & 1)
        v |= ~std::uint64_t{0} << (n * 8);
    return static_cast<std::int64_t>(v);
}

// Reads RFC 8536 TZif data and returns the local time type in force at
// @p t. Uses the 64-bit (v2+) block when present. Instants after the last
// transition use the last type: Debian ships "fat" files with transitions
// through 2037, so the POSIX footer rule is not needed before then.
std::optional<local_type> tzif_lookup(std::string const& path, std::int64_t t)
{
    std::ifstream in(path, std::ios::binary);
    if (!in)
        return std::nullopt;
    std::vector<unsigned char> d((std::istreambuf_iterator<char>(in)),
                                 std::istreambuf_iterator<char>());
    if (d.size() < 44 || std::string_view(reinterpret_cast<char const*>(d.data()), 4) != "TZif")
        return std::nullopt;

    std::size_t pos = 0;
    auto read_header = [&](std::size_t at, std::int64_t(&c)[6])
    {
        for (int i = 0; i < 6; ++i)
            c[i] = be(&d[at + 20 + 4 * i], 4);
    };
    std::int64_t c[6]; // isutcnt isstdcnt leapcnt timecnt typecnt charcnt
    read_header(0, c);
    int time_size = 4;
    if (d[4] >= '2')
    {
        // Skip the v1 block to the v2 header.
        pos = 44 + c[3] * 4 + c[3] + c[4] * 6 + c[5] + c[2] * 8 + c[1] + c[0];
        if (pos + 44 > d.size())
            return std::nullopt;
        read_header(pos, c);
        time_size = 8;
    }
    pos += 44;
    auto const timecnt = static_cast<std::size_t>(c[3]);
    auto const typecnt = static_cast<std::size_t>(c[4]);
    auto const charcnt = static_cast<std::size_t>(c[5]);
    auto const need = timecnt * time_size + timecnt + typecnt * 6 + charcnt;
    if (typecnt == 0 || pos + need > d.size())
        return std::nullopt;

    auto const* times = &d[pos];
    auto const* idx = times + timecnt * time_size;
    auto const* types = idx + timecnt;
    auto const* chars = types + typecnt * 6;

    std::size_t type = 0;
    for (std::size_t i = 0; i < timecnt; ++i)
    {
        if (be(times + i * time_size, time_size) > t)
            break;
        type = idx[i];
    }
    if (type >= typecnt)
        return std::nullopt;
    auto const* tt = types + type * 6;
    local_type out;
    out.offset = static_cast<std::int32_t>(be(tt, 4));
    std::size_t const abbr = tt[5];
    for (std::size_t i = abbr; i < charcnt && chars[i]; ++i)
        out.abbreviation.push_back(static_cast<char>(chars[i]));
    return out;
}

} // namespace

zoned_instant time_in_zone(std::string_view zone, std::chrono::system_clock::time_point at)
{
    using namespace std::chrono;
    auto const ms = duration_cast<milliseconds>(at.time_since_epoch()).count();
    auto const seconds = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);

    std::optional<local_type> type = fixed_zone(zone);
    if (!type && safe_zone_name(zone))
        type = tzif_lookup("/usr/share/zoneinfo/" + std::string(zone), seconds);
    if (!type)
        throw std::invalid_argument("unknown time zone '" + std::string(zone) + "'");

    auto const local = sys_days{} + milliseconds(ms + std::int64_t{type->offset} * 1000);
    auto const day = floor<days>(local);
    year_month_day const ymd{day};
    hh_mm_ss const hms{floor<milliseconds>(local - day)};
    zoned_instant z;
    z.zone = std::string(zone);
    z.abbreviation = type->abbreviation;
    z.offset_seconds = type->offset;
    z.iso =
        fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{}", static_cast<int>(ymd.year()),
                    static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                    hms.hours().count(), hms.minutes().count(), hms.seconds().count(),
                    hms.subseconds().count(), type->offset == 0 ? "Z" : offset_text(type->offset));
    return z;
}

} // namespace chatstream::streaming
