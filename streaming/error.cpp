#include "chatstream/streaming/error.hpp"

#include "chatstream/storage/error.hpp"

#include <string>

namespace chatstream::streaming
{
namespace
{

class wire_category_impl : public std::error_category
{
public:
    char const* name() const noexcept override { return "chatstream.wire"; }
    std::string message(int ev) const override
    {
        return std::string(to_string(static_cast<wire_error>(ev)));
    }
};

} // namespace

std::error_category const& wire_category() noexcept
{
    static wire_category_impl const category;
    return category;
}

std::string_view to_string(wire_error e) noexcept
{
    switch (e)
    {
    case wire_error::ok:
        return "ok";
    case wire_error::bad_request:
        return "bad_request";
    case wire_error::not_found:
        return "not_found";
    case wire_error::unauthorized:
        return "unauthorized";
    case wire_error::rate_limited:
        return "rate_limited";
    case wire_error::quota_exceeded:
        return "quota_exceeded";
    case wire_error::conflict:
        return "conflict";
    case wire_error::internal:
        return "internal";
    }
    return "internal";
}

wire_error to_wire_error(std::error_code ec) noexcept
{
    if (!ec)
        return wire_error::ok;
    if (ec.category() == wire_category())
        return static_cast<wire_error>(ec.value());
    if (ec.category() == storage::storage_category())
    {
        switch (static_cast<storage::errc>(ec.value()))
        {
        case storage::errc::not_found:
            return wire_error::not_found;
        case storage::errc::conflict:
            return wire_error::conflict;
        case storage::errc::invalid_argument:
            return wire_error::bad_request;
        default:
            return wire_error::internal;
        }
    }
    return wire_error::internal;
}

} // namespace chatstream::streaming
