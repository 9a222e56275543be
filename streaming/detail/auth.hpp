#pragma once
// Authentication of HTTP requests (DESIGN.md §6): JWT HS256 from
// `Authorization: Bearer` or `?token=`; dev mode (no secret) takes `?user=`.
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
};

/// The decoded value of query parameter @p key of request target @p target.
std::optional<std::string> query_param(std::string_view target, std::string_view key);

/// @param target the request target (path and query)
/// @param authorization the Authorization header value (may be empty)
/// @param secret HS256 key; absent = dev mode
auth_result authenticate(std::string_view target, std::string_view authorization,
                         std::optional<std::string> const& secret);

} // namespace chatstream::streaming::detail
