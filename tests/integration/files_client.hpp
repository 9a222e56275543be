#pragma once
// Test support for /api/files: blocking HTTP requests with a body and
// response headers, and an upload helper.
#include "server_process.hpp"

#include <map>
#include <optional>

namespace chatstream::test
{

struct http_full_reply
{
    unsigned status = 0;
    std::map<std::string, std::string> headers; ///< lowercased names
    std::string body;

    std::string header(std::string const& name) const
    {
        auto it = headers.find(name);
        return it == headers.end() ? std::string() : it->second;
    }
    json::object json_body() const { return json::parse(body).as_object(); }
};

/// One HTTP/1.1 request; the reply is read with a 15 s timeout.
inline http_full_reply
http_request(unsigned short port, http::verb method, std::string const& target,
             std::vector<std::pair<std::string, std::string>> const& headers = {},
             std::string body = {})
{
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    http::request<http::string_body> req(method, target, 11);
    req.set(http::field::host, "127.0.0.1");
    for (auto const& [k, v] : headers)
        req.set(k, v);
    if (!body.empty() || method == http::verb::post)
    {
        req.body() = std::move(body);
        req.prepare_payload();
    }
    stream.expires_after(std::chrono::seconds(15));
    beast::error_code ec;
    http::write(stream, req, ec); // may fail when the server refuses early; the reply still counts
    beast::flat_buffer b;
    http::response_parser<http::string_body> p;
    p.body_limit(1u << 30);
    p.skip(method == http::verb::head);
    bool done = false;
    http::async_read(stream, b, p,
                     [&](beast::error_code e, std::size_t)
                     {
                         ec = e;
                         done = true;
                     });
    ioc.run_for(std::chrono::seconds(15));
    if (!done || ec)
        throw std::runtime_error("no HTTP reply from the server: " + ec.message());
    http_full_reply r;
    auto res = p.release();
    r.status = res.result_int();
    for (auto const& f : res)
    {
        std::string name(f.name_string());
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        r.headers[name] = std::string(f.value());
    }
    r.body = std::move(res.body());
    return r;
}

/// POST /api/files with a raw body; @p query carries the user (dev mode).
inline http_full_reply upload_raw(unsigned short port, std::string const& user,
                                  std::string const& name, std::string const& mime,
                                  std::string bytes)
{
    return http_request(port, http::verb::post, "/api/files?user=" + user + "&filename=" + name,
                        {{"Content-Type", mime}}, std::move(bytes));
}

/// Uploads and returns the storageId (fails the test on a non-201).
inline std::string upload_ok(unsigned short port, std::string const& user, std::string const& name,
                             std::string const& mime, std::string bytes)
{
    auto r = upload_raw(port, user, name, mime, std::move(bytes));
    if (r.status != 201)
        throw std::runtime_error("upload failed: " + std::to_string(r.status) + " " + r.body);
    return std::string(r.json_body().at("storageId").as_string());
}

/// A minimal valid-looking PNG header of @p w x @p h (enough for the sniffer).
inline std::string png_bytes(std::uint32_t w, std::uint32_t h, std::size_t padding = 100)
{
    auto be32 = [](std::uint32_t v) {
        return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
    };
    return std::string("\x89PNG\r\n\x1a\n", 8) + be32(13) + "IHDR" + be32(w) + be32(h) +
           std::string("\x08\x06\x00\x00\x00", 5) + std::string(padding, 'p');
}

} // namespace chatstream::test
