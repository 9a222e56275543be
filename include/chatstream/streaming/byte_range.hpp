#pragma once
/// @file byte_range.hpp
/// The single-range subset of HTTP `Range` (RFC 9110 §14) that
/// GET /api/files/{id} serves.
#include <cstdint>
#include <string_view>

namespace chatstream::streaming
{

struct range_result
{
    enum class kind
    {
        none,         ///< no usable Range: send the whole file (200)
        partial,      ///< send bytes [first, last] (206)
        unsatisfiable ///< 416 with `Content-Range: bytes */size`
    };
    kind type = kind::none;
    std::uint64_t first = 0;
    std::uint64_t last = 0; ///< inclusive
};

/// Parses `bytes=a-b`, `bytes=a-` and `bytes=-n` against a representation
/// of @p size bytes. Several ranges, other units and malformed values give
/// kind::none (ignoring Range is always allowed); `last` is clamped.
range_result parse_range(std::string_view header, std::uint64_t size);

} // namespace chatstream::streaming
