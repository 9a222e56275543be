#pragma once
/// @file multipart.hpp
/// Incremental multipart/form-data parser (RFC 7578) for streamed uploads:
/// fed the body in chunks of any size, it hands out the bytes of each part
/// as they arrive, holding back only the few bytes that could start a
/// boundary. Memory stays bounded by the chunk size plus the part headers.
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace chatstream::streaming
{

class multipart_parser
{
public:
    struct part
    {
        std::string name;                    ///< form field name
        std::optional<std::string> filename; ///< present for file fields
        std::string content_type;            ///< as sent (may be empty)
    };

    /// Called when a part's headers are complete; return false to skip its
    /// data. Called for data of the kept part, possibly many times.
    using on_part_fn = std::function<bool(part const&)>;
    using on_data_fn = std::function<void(std::string_view)>;

    /// The `boundary` parameter of a `multipart/form-data` Content-Type, or
    /// std::nullopt when @p content_type is not one (or has no valid boundary).
    static std::optional<std::string> boundary_of(std::string_view content_type);

    multipart_parser(std::string const& boundary, on_part_fn on_part, on_data_fn on_data);

    /// Consumes @p data. @return false on malformed input (see error()); the
    /// parser is then unusable. Callbacks may throw; the exception propagates.
    bool feed(std::string_view data);

    /// True once the closing boundary was seen.
    bool done() const noexcept { return state_ == state::epilogue; }
    std::string const& error() const noexcept { return error_; }

    /// Largest accepted header block of one part.
    static constexpr std::size_t max_header_bytes = 8 * 1024;

private:
    enum class state
    {
        preamble,
        after_delimiter,
        headers,
        body,
        epilogue,
        failed
    };

    bool fail(std::string why);
    bool parse_headers(std::string_view block);

    std::string delimiter_; ///< "\r\n--" + boundary
    on_part_fn on_part_;
    on_data_fn on_data_;
    std::string pending_;
    state state_ = state::preamble;
    bool keep_ = false;
    part current_;
    std::string error_;
};

} // namespace chatstream::streaming
