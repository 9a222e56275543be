// libFuzzer target: canonical_json against an independent parser.
// Oracle: Boost.JSON, a parser that shares no code with simdjson.
//  - What canonical_json accepts, Boost.JSON accepts, and both texts parse
//    to the same value: minifying never changes meaning.
//  - canonical_json is idempotent: its output is its own canonical form.
//  - What Boost.JSON accepts, canonical_json accepts too, except for the
//    limits simdjson documents and Boost.JSON does not share: numbers
//    outside 64-bit/double range and nesting deeper than 1024.
#include "chatstream/core/json.hpp"

#include <boost/json.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace
{

void require(bool ok)
{
    if (!ok)
        std::abort();
}

boost::json::value parse_with_boost(std::string_view text, boost::system::error_code& ec)
{
    boost::json::parse_options options;
    options.max_depth = 1 << 20; // Boost.JSON's parser does not recurse
    return boost::json::parse(text, ec, {}, options);
}

/// Structural equality, with one allowance for Boost.JSON 1.81 itself: its
/// double parsing is not correctly rounded (the same spelling can read one
/// ulp apart depending on what follows it, and 0e4444 reads as NaN), so
/// doubles compare within a relative 1e-12, NaN equal to NaN.
bool same_value(boost::json::value const& a, boost::json::value const& b)
{
    if (a.kind() != b.kind())
        return false;
    switch (a.kind())
    {
    case boost::json::kind::double_:
    {
        double const x = a.get_double(), y = b.get_double();
        if (std::isnan(x) || std::isnan(y))
            return std::isnan(x) && std::isnan(y);
        return x == y || std::fabs(x - y) <= 1e-12 * std::max(std::fabs(x), std::fabs(y));
    }
    case boost::json::kind::array:
    {
        auto const &p = a.get_array(), &q = b.get_array();
        if (p.size() != q.size())
            return false;
        for (std::size_t i = 0; i < p.size(); ++i)
            if (!same_value(p[i], q[i]))
                return false;
        return true;
    }
    case boost::json::kind::object:
    {
        auto const &p = a.get_object(), &q = b.get_object();
        if (p.size() != q.size())
            return false;
        for (auto i = p.begin(), j = q.begin(); i != p.end(); ++i, ++j)
            if (i->key() != j->key() || !same_value(i->value(), j->value()))
                return false;
        return true;
    }
    default:
        return a == b;
    }
}

bool is_documented_limit(std::string const& error)
{
    for (auto code : {simdjson::NUMBER_ERROR, simdjson::NUMBER_OUT_OF_RANGE, simdjson::DEPTH_ERROR})
        if (error == simdjson::error_message(code))
            return true;
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using chatstream::core::canonical_json;
    std::string_view const text(reinterpret_cast<char const*>(data), size);
    std::string error;
    auto const once = canonical_json(text, &error);

    boost::system::error_code ec;
    auto const expected = parse_with_boost(text, ec);
    if (!once)
    {
        require(!error.empty());
        if (!ec)
            require(is_documented_limit(error));
        return 0;
    }
    // Boost.JSON 1.81 refuses an exponent it cannot hold even when the
    // mantissa is 0 ("0E7766…6668" is valid JSON, simdjson reads 0): its
    // limit, not a disagreement about the text.
    if (ec == boost::json::error::exponent_overflow)
        return 0;
    require(!ec);
    boost::system::error_code ec2;
    auto const got = parse_with_boost(*once, ec2);
    require(!ec2 && same_value(got, expected));

    auto const twice = canonical_json(*once);
    require(twice && *twice == *once);
    return 0;
}
