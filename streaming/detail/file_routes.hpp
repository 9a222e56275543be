#pragma once
// POST /api/files and GET /api/files/{storageId} (streaming/file_upload.cpp,
// streaming/file_download.cpp), connection-owning routes of
// detail/http_routes.hpp.
#include "chatstream/streaming/byte_range.hpp"
#include "detail/http_routes.hpp"

#include <boost/asio/io_context.hpp>

#include <functional>
#include <memory>

namespace chatstream::streaming::detail
{

void handle_file_upload(boost::beast::tcp_stream&& stream, boost::beast::flat_buffer&& buffer,
                        header_parser&& parser, std::shared_ptr<server_context> const& ctx);

void handle_file_download(boost::beast::tcp_stream&& stream, boost::beast::flat_buffer&& buffer,
                          header_parser&& parser, std::shared_ptr<server_context> const& ctx);

/// Starts the periodic garbage collection of unreferenced files on @p ioc
/// (streaming/file_sweeper.cpp). It runs until the io_context stops.
void start_file_sweeper(boost::asio::io_context& ioc, std::shared_ptr<server_context> ctx);

/// One sweep: deletes the rows and blobs of files no attachment references
/// and nobody uploaded within the TTL, on the writer. @p done(count) runs on
/// the writer thread.
void sweep_files(server_context& ctx, std::function<void(std::size_t)> done);

} // namespace chatstream::streaming::detail
