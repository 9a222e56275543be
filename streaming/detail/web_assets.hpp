#pragma once
// The chat page of web/, embedded at build time (cmake/EmbedWeb.cmake).
#include <string_view>
#include <vector>

namespace chatstream::streaming::detail
{

struct web_asset
{
    std::string_view path; ///< "/app.js"; "/index.html" also answers "/"
    std::string_view mime;
    std::string_view body;
};

std::vector<web_asset> const& web_assets();

/// The asset for a request path, or nullptr.
inline web_asset const* find_web_asset(std::string_view path)
{
    if (path == "/")
        path = "/index.html";
    for (auto const& a : web_assets())
        if (a.path == path)
            return &a;
    return nullptr;
}

} // namespace chatstream::streaming::detail
