// libFuzzer target: request authentication (JWT HS256 from the
// Authorization header or ?token=, dev-mode ?user=) on arbitrary input.
// Input: request target, '\n', Authorization header value.
// Properties:
//  - never crashes, never throws;
//  - an accepted request names a non-empty user of at most 256 bytes;
//  - an accepted token, from the Authorization header or ?token=, carries a
//    valid HMAC-SHA256 of its header and payload under the server's secret
//    (independent oracle: OpenSSL), an `alg` of HS256, the `sub` the server
//    names, and an integer `exp` in the future, required unless the policy
//    allows tokens without one (Boost.JSON reads the claims).
#include "detail/auth.hpp"

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>

namespace
{

using chatstream::streaming::detail::auth_policy;
using chatstream::streaming::detail::auth_result;
using chatstream::streaming::detail::authenticate;

std::string const secret = "fuzz-secret";

void require(bool ok)
{
    if (!ok)
        std::abort();
}

// base64url without padding, lenient about trailing bits, strict about the alphabet.
std::optional<std::string> b64url_decode(std::string_view in)
{
    while (!in.empty() && in.back() == '=')
        in.remove_suffix(1);
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (char c : in)
    {
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-' || c == '+')
            v = 62;
        else if (c == '_' || c == '/')
            v = 63;
        else
            return std::nullopt;
        acc = (acc << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8)
        {
            bits -= 8;
            out += static_cast<char>((acc >> bits) & 0xff);
        }
    }
    return out;
}

bool signature_matches(std::string_view token)
{
    auto const dot2 = token.rfind('.');
    if (dot2 == std::string_view::npos)
        return false;
    auto const signing_input = token.substr(0, dot2);
    auto const sig = b64url_decode(token.substr(dot2 + 1));
    if (!sig)
        return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size(), mac,
         &len);
    return *sig == std::string_view(reinterpret_cast<char const*>(mac), len);
}

/// What an accepted token must be, checked without libjwt: three base64url
/// parts, an HMAC-SHA256 of the first two under the secret (OpenSSL), a
/// header with alg HS256, and a payload whose `sub` is the user, whose `exp`
/// is an integer in the future (absent only when allowed) and whose `nbf`,
/// if any, is an integer not in the future (Boost.JSON).
void require_valid_token(std::string_view token, auth_result const& r, bool allow_no_exp)
{
    require(signature_matches(token));
    auto const dot1 = token.find('.');
    auto const dot2 = token.rfind('.');
    require(dot1 != std::string_view::npos && dot1 != dot2);
    auto const header = b64url_decode(token.substr(0, dot1));
    auto const payload = b64url_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
    require(header && payload);
    boost::system::error_code ec;
    auto const h = boost::json::parse(*header, ec);
    require(!ec && h.is_object());
    auto const* alg = h.as_object().if_contains("alg");
    require(alg && alg->is_string() && alg->as_string() == "HS256");
    auto const p = boost::json::parse(*payload, ec);
    require(!ec && p.is_object());
    auto const& claims = p.as_object();
    auto const* sub = claims.if_contains("sub");
    require(sub && sub->is_string() && sub->as_string() == r.external_id);
    auto const now_s = std::time(nullptr);
    if (auto const* exp = claims.if_contains("exp"))
    {
        require(exp->is_int64() || exp->is_uint64());
        auto const v = exp->to_number<std::int64_t>();
        require(v > now_s - 5 && r.expires_at_s == v); // 5 s: the clocks are read apart
    }
    else
        require(allow_no_exp && !r.expires_at_s);
    if (auto const* nbf = claims.if_contains("nbf"))
        require((nbf->is_int64() || nbf->is_uint64()) &&
                nbf->to_number<std::int64_t>() <= now_s + 5);
}

/// The token the server must have read: the Authorization bearer, else the
/// `token` query parameter (decoded by Boost.URL, as a browser encodes it).
std::string presented_token(std::string_view target, std::string_view authorization)
{
    constexpr std::string_view bearer = "Bearer ";
    if (authorization.size() > bearer.size() && authorization.substr(0, bearer.size()) == bearer)
        return std::string(authorization.substr(bearer.size()));
    auto u = boost::urls::parse_origin_form(target);
    if (!u)
        return {};
    auto params = u->params();
    auto it = params.find("token");
    return it == params.end() ? std::string() : std::string((*it).value);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const in(reinterpret_cast<char const*>(data), size);
    auto const nl = in.find('\n');
    auto const target = in.substr(0, nl);
    auto const authorization =
        nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);

    auto const dev = authenticate(target, authorization, auth_policy{});
    if (dev.ok)
        require(!dev.external_id.empty() && dev.external_id.size() <= 256 && !dev.expires_at_s);
    else
        require(!dev.error.empty());

    for (bool const allow_no_exp : {false, true})
    {
        auto const r = authenticate(target, authorization, auth_policy{secret, allow_no_exp});
        if (!r.ok)
        {
            require(!r.error.empty());
            continue;
        }
        require(!r.external_id.empty() && r.external_id.size() <= 256);
        require_valid_token(presented_token(target, authorization), r, allow_no_exp);
    }
    return 0;
}
