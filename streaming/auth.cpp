#include "detail/auth.hpp"

#include "chatstream/core/clock.hpp"

#include <boost/url/parse.hpp>
#include <jwt.h>

#include <charconv>
#include <cstdlib>
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

enum class claim_state
{
    absent,
    not_integer,
    present
};

struct claim
{
    claim_state state = claim_state::absent;
    std::int64_t value = 0;
};

/// A NumericDate claim read from its JSON text. Not jwt_get_grant_int:
/// libjwt 1.10 returns json_integer_value(), which is 0 with errno unset for
/// a string or a real, so `"nbf":"0"` or `"exp":4.1e9` would read as 0
/// (found by jwt_auth_fuzz's oracle). RFC 7519 allows a fractional
/// NumericDate; we refuse it rather than round, as most verifiers do.
claim numeric_date(jwt_t* jwt, char const* name)
{
    std::unique_ptr<char, decltype(&std::free)> text(jwt_get_grants_json(jwt, name), &std::free);
    if (!text)
        return {};
    std::string_view const v(text.get());
    std::int64_t n = 0;
    auto const [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc{} || end != v.data() + v.size())
        return {claim_state::not_integer};
    return {claim_state::present, n};
}

auth_result verify_jwt(std::string const& token, std::string const& secret, bool allow_no_exp)
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
    auto const exp = numeric_date(jwt.get(), "exp");
    if (exp.state == claim_state::not_integer)
        return {false, {}, "'exp' must be an integer NumericDate"};
    if (exp.state == claim_state::absent && !allow_no_exp)
        return {false, {}, "token has no 'exp' (serve --jwt-allow-no-exp accepts such tokens)"};
    if (exp.state == claim_state::present && exp.value <= now_s)
        return {false, {}, "token expired"};
    auto const nbf = numeric_date(jwt.get(), "nbf");
    if (nbf.state == claim_state::not_integer)
        return {false, {}, "'nbf' must be an integer NumericDate"};
    if (nbf.state == claim_state::present && nbf.value > now_s)
        return {false, {}, "token not yet valid"};
    std::optional<std::int64_t> expires_at_s;
    if (exp.state == claim_state::present)
        expires_at_s = exp.value;

    char const* sub = jwt_get_grant(jwt.get(), "sub");
    if (!sub || !*sub)
        return {false, {}, "token has no 'sub'"};
    if (std::string_view(sub).size() > 256)
        return {false, {}, "'sub' is too long"};
    return {true, sub, {}, expires_at_s};
}

} // namespace

auth_result authenticate(std::string_view target, std::string_view authorization,
                         auth_policy const& policy)
{
    auto const& secret = policy.secret;
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
    return verify_jwt(token, *secret, policy.allow_no_exp);
}

bool bearer_matches(std::string_view authorization, std::string const& token)
{
    constexpr std::string_view bearer = "Bearer ";
    if (!authorization.starts_with(bearer))
        return false;
    auto const presented = authorization.substr(bearer.size());
    // Constant time in the token's content: /metrics is unauthenticated
    // otherwise, and a timing oracle would give the token away byte by byte.
    unsigned char diff = presented.size() == token.size() ? 0 : 1;
    for (std::size_t i = 0; i < token.size(); ++i)
        diff |= static_cast<unsigned char>((i < presented.size() ? presented[i] : 0) ^ token[i]);
    return diff == 0;
}

} // namespace chatstream::streaming::detail
