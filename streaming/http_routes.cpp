// The table of connection-owning HTTP routes (detail/http_routes.hpp).
#include "detail/http_routes.hpp"

namespace chatstream::streaming::detail
{

connection_route find_connection_route(std::string_view path)
{
    (void)path;
    return nullptr;
}

} // namespace chatstream::streaming::detail
