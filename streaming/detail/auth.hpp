#pragma once
// Authentication of HTTP requests (docs/design.md §6): JWT HS256 from
// `Authorization: Bearer` or `?token=`; dev mode (no secret) takes `?user=`.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::streaming::detail
{

struct auth_result
{
    bool ok = false;
    std::string external_id; ///< the JWT `sub`, or the dev-mode user name
    std::string error;       ///< why not, for the 401 body and the log
    /// The token's `exp` (Unix seconds): a WebSocket opened with it is
    /// closed then. Absent in dev mode and for tokens without `exp`.
    std::optional<std::int64_t> expires_at_s;
};

/// How requests are authenticated (`serve --jwt-secret-env`, `--jwt-allow-no-exp`).
struct auth_policy
{
    std::optional<std::string> secret; ///< HS256 key; absent = dev mode
    /// Accept tokens without `exp` (they never expire). Off by default: a
    /// leaked token without `exp` would be valid forever.
    bool allow_no_exp = false;
};

/// The decoded value of query parameter @p key of request target @p target.
std::optional<std::string> query_param(std::string_view target, std::string_view key);

/// @param target the request target (path and query)
/// @param authorization the Authorization header value (may be empty)
auth_result authenticate(std::string_view target, std::string_view authorization,
                         auth_policy const& policy);

/// Whether @p authorization is `Bearer <token>`, compared in constant time.
bool bearer_matches(std::string_view authorization, std::string const& token);

} // namespace chatstream::streaming::detail
