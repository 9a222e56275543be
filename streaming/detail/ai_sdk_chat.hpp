#pragma once
// The AI SDK chat transport endpoints (docs/ai-sdk.md): connection-owning
// routes, see detail/http_routes.hpp.
#include "detail/http_routes.hpp"

namespace chatstream::streaming::detail
{

/// `POST /api/chat` (and its CORS preflight): a useChat request body in, an
/// AI SDK UI message stream (SSE) out.
void serve_ai_sdk_chat(boost::beast::tcp_stream&& stream, boost::beast::flat_buffer&& buffer,
                       header_parser&& parser, std::shared_ptr<server_context> const& ctx);

/// `GET /api/chat/{id}/stream` (resume: the running generation from its
/// start, or 204) and `POST /api/chat/{id}/stop` (cancel it).
void serve_ai_sdk_chat_item(boost::beast::tcp_stream&& stream, boost::beast::flat_buffer&& buffer,
                            header_parser&& parser, std::shared_ptr<server_context> const& ctx);

} // namespace chatstream::streaming::detail
