// The table of connection-owning HTTP routes (detail/http_routes.hpp).
#include "detail/http_routes.hpp"

#include "detail/ai_sdk_chat.hpp"
#include "detail/file_routes.hpp"

namespace chatstream::streaming::detail
{

connection_route find_connection_route(std::string_view path)
{
    if (path == "/api/files")
        return &handle_file_upload;
    if (path.starts_with("/api/files/"))
        return &handle_file_download;
    // The AI SDK chat transport (docs/ai-sdk.md): SSE responses.
    if (path == "/api/chat")
        return &serve_ai_sdk_chat;
    if (path.starts_with("/api/chat/"))
        return &serve_ai_sdk_chat_item;
    return nullptr;
}

} // namespace chatstream::streaming::detail
