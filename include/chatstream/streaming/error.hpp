#pragma once
/// @file error.hpp
/// Wire error codes: the `code` of the protocol's `error` event (docs/design.md §6).
#include <string_view>
#include <system_error>

namespace chatstream::streaming
{

enum class wire_error
{
    ok = 0,
    bad_request = 1,
    not_found,
    unauthorized,
    rate_limited,
    quota_exceeded,
    conflict,
    internal
};

std::error_category const& wire_category() noexcept;

inline std::error_code make_error_code(wire_error e) noexcept
{
    return {static_cast<int>(e), wire_category()};
}

/// The protocol spelling of @p e, e.g. `not_found`.
std::string_view to_string(wire_error e) noexcept;

/// Maps any error (storage errc, wire_error, other) onto a wire code:
/// storage not_found/conflict/invalid_argument keep their meaning, anything
/// else is `internal`.
wire_error to_wire_error(std::error_code ec) noexcept;

} // namespace chatstream::streaming

template <> struct std::is_error_code_enum<chatstream::streaming::wire_error> : std::true_type
{
};
