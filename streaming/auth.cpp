#include "detail/auth.hpp"

#include "chatstream/core/clock.hpp"

#include <boost/url/parse.hpp>
#include <jwt.h>

#include <cerrno>
#include <memory>

namespace chatstream::streaming::detail
{

std::optional<std::string> query_param(std::string_view target, std::string_view key)
{
    auto u = boost::urls::parse_origin_form(target);
    if (!u)
        return std::nullopt;
    auto params = u->params();
    auto it = params.find(key);
    if (it == params.end())
        return std::nullopt;
    return std::string((*it).value);
}

namespace
{

auth_result verify_jwt(std::string const& token, std::string const& secret)
{
    jwt_t* raw = nullptr;
    // jwt_decode verifies the signature with the key (it refuses alg "none"
    // when a key is given); the algorithm is pinned to HS256 below.
    if (jwt_decode(&raw, token.c_str(), reinterpret_cast<unsigned char const*>(secret.data()),
                   static_cast<int>(secret.size())) != 0 ||
        !raw)
        return {false, {}, "invalid token"};
    std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, &jwt_free);
    if (jwt_get_alg(jwt.get()) != JWT_ALG_HS256)
        return {false, {}, "token must be signed with HS256"};

    auto const now_s = core::now_ms() / 1000;
    errno = 0;
    long exp = jwt_get_grant_int(jwt.get(), "exp");
    if (errno == 0 && exp <= now_s)
        return {false, {}, "token expired"};
    errno = 0;
    long nbf = jwt_get_grant_int(jwt.get(), "nbf");
    if (errno == 0 && nbf > now_s)
        return {false, {}, "token not yet valid"};

    char const* sub = jwt_get_grant(jwt.get(), "sub");
    if (!sub || !*sub)
        return {false, {}, "token has no 'sub'"};
    if (std::string_view(sub).size() > 256)
        return {false, {}, "'sub' is too long"};
    return {true, sub, {}};
}

} // namespace

auth_result authenticate(std::string_view target, std::string_view authorization,
                         std::optional<std::string> const& secret)
{
    if (!secret)
    {
        auto user = query_param(target, "user");
        if (!user || user->empty())
            return {true, "local", {}};
        if (user->size() > 256)
            return {false, {}, "'user' is too long"};
        return {true, std::move(*user), {}};
    }
    std::string token;
    constexpr std::string_view bearer = "Bearer ";
    if (authorization.size() > bearer.size() && authorization.substr(0, bearer.size()) == bearer)
        token = std::string(authorization.substr(bearer.size()));
    else if (auto t = query_param(target, "token"))
        token = std::move(*t);
    if (token.empty())
        return {false, {}, "missing bearer token"};
    // libjwt takes a C string: a NUL would cut the token, and a valid token
    // followed by "\0<anything>" (e.g. ?token=<jwt>%00junk) would pass.
    // Found by jwt_auth_fuzz.
    if (token.find('\0') != std::string::npos)
        return {false, {}, "invalid token"};
    return verify_jwt(token, *secret);
}

} // namespace chatstream::streaming::detail
