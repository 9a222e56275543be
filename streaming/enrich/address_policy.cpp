// The SSRF rule of link previews: which resolved addresses a fetch may
// connect to. Derived from the IANA special-purpose registries (RFC 6890 and
// updates); a deny list for IPv4, an allow list (2000::/3) for IPv6.
#include "chatstream/streaming/page_fetcher.hpp"

#include <array>
#include <cstdint>

namespace chatstream::streaming
{
namespace
{

struct v4_range
{
    std::uint32_t network;
    int prefix;
};

constexpr std::uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d)
{
    return (a << 24) | (b << 16) | (c << 8) | d;
}

constexpr std::array<v4_range, 15> forbidden_v4{{
    {v4(0, 0, 0, 0), 8},       // "this network", includes 0.0.0.0
    {v4(10, 0, 0, 0), 8},      // private
    {v4(100, 64, 0, 0), 10},   // carrier-grade NAT
    {v4(127, 0, 0, 0), 8},     // loopback
    {v4(169, 254, 0, 0), 16},  // link-local, 169.254.169.254 cloud metadata
    {v4(172, 16, 0, 0), 12},   // private
    {v4(192, 0, 0, 0), 24},    // IETF protocol assignments
    {v4(192, 0, 2, 0), 24},    // documentation (TEST-NET-1)
    {v4(192, 88, 99, 0), 24},  // 6to4 relay anycast (deprecated)
    {v4(192, 168, 0, 0), 16},  // private
    {v4(198, 18, 0, 0), 15},   // benchmarking
    {v4(198, 51, 100, 0), 24}, // documentation (TEST-NET-2)
    {v4(203, 0, 113, 0), 24},  // documentation (TEST-NET-3)
    {v4(224, 0, 0, 0), 4},     // multicast
    {v4(240, 0, 0, 0), 4},     // reserved, includes 255.255.255.255
}};

bool forbidden(std::uint32_t a) noexcept
{
    for (auto const& r : forbidden_v4)
    {
        auto const mask = ~std::uint32_t{0} << (32 - r.prefix); // prefix is 4..24
        if ((a & mask) == r.network)
            return true;
    }
    return false;
}

std::uint32_t v4_at(std::array<unsigned char, 16> const& b, std::size_t i) noexcept
{
    return (std::uint32_t{b[i]} << 24) | (std::uint32_t{b[i + 1]} << 16) |
           (std::uint32_t{b[i + 2]} << 8) | std::uint32_t{b[i + 3]};
}

bool all_zero(std::array<unsigned char, 16> const& b, std::size_t from, std::size_t to) noexcept
{
    for (auto i = from; i < to; ++i)
        if (b[i] != 0)
            return false;
    return true;
}

bool forbidden(boost::asio::ip::address_v6 const& a) noexcept
{
    auto const b = a.to_bytes();
    // IPv4-mapped ::ffff:a.b.c.d: the kernel connects to the IPv4 address.
    if (all_zero(b, 0, 10) && b[10] == 0xff && b[11] == 0xff)
        return forbidden(v4_at(b, 12));
    // NAT64 well-known prefix 64:ff9b::/96: the translator connects to the
    // embedded IPv4 address, so it gets the IPv4 rule.
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && all_zero(b, 4, 12))
        return forbidden(v4_at(b, 12));
    // Only global unicast is reachable on the Internet; this also refuses
    // ::, ::1, IPv4-compatible ::a.b.c.d, 64:ff9b:1::/48 (local NAT64),
    // 100::/64 (discard), fc00::/7, fe80::/10, fec0::/10 and ff00::/8.
    if ((b[0] & 0xe0) != 0x20)
        return true;
    // 2001::/23: Teredo (2001::/32, hides an arbitrary IPv4 address),
    // benchmarking 2001:2::/48, ORCHID; nothing a web page lives on.
    if (b[0] == 0x20 && b[1] == 0x01 && (b[2] & 0xfe) == 0x00)
        return true;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return true; // documentation
    // 6to4 2002:a.b.c.d::/48 routes to the embedded IPv4 address.
    if (b[0] == 0x20 && b[1] == 0x02)
        return forbidden(v4_at(b, 2));
    return false;
}

} // namespace

bool is_forbidden_address(boost::asio::ip::address const& address) noexcept
{
    if (address.is_v4())
        return forbidden(address.to_v4().to_uint());
    return forbidden(address.to_v6());
}

} // namespace chatstream::streaming
