// Hostile uploads on the real binary (issue 20, finding 8): every byte of
// a multipart body counts toward --max-upload-mb, chunked or not.
#include "files_client.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace chatstream;
using namespace chatstream::test;

namespace
{

std::string text(json::value const& v) { return std::string(v.as_string()); }

std::size_t stored_blobs(temp_dir const& dir)
{
    std::size_t n = 0;
    if (!std::filesystem::exists(dir.path() / "files"))
        return 0;
    for (auto const& e : std::filesystem::recursive_directory_iterator(dir.path() / "files"))
        if (e.is_regular_file() && e.path().parent_path().filename() != "tmp")
            ++n;
    return n;
}

std::string file_part(std::string const& name, std::string const& type, std::string const& bytes)
{
    return "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name +
           "\"\r\nContent-Type: " + type + "\r\n\r\n" + bytes + "\r\n";
}

std::string field_part(std::string const& name, std::string const& value)
{
    return "--b\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n";
}

std::string const closing = "--b--\r\n";

struct raw_reply
{
    http::response<http::string_body> res;
    bool closed_after = false; ///< the server closed the connection after the answer
};

/// POST /api/files?user=alice with @p body, chunked (64 KiB chunks) or with
/// a Content-Length, over a raw socket. Write errors are ignored: a server
/// that refuses early may stop reading; its answer is what counts.
raw_reply post_multipart(unsigned short port, std::string const& body, bool chunked)
{
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    stream.expires_after(std::chrono::seconds(30));
    std::string head = "POST /api/files?user=alice HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Content-Type: multipart/form-data; boundary=b\r\n";
    head += chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                    : "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    beast::error_code ec;
    net::write(stream, net::buffer(head), ec);
    if (chunked)
    {
        constexpr std::size_t chunk = 64 * 1024;
        for (std::size_t at = 0; at < body.size() && !ec; at += chunk)
        {
            auto const piece = body.substr(at, chunk);
            std::ostringstream size;
            size << std::hex << piece.size();
            net::write(stream, net::buffer(size.str() + "\r\n" + piece + "\r\n"), ec);
        }
        if (!ec)
            net::write(stream, net::buffer(std::string("0\r\n\r\n")), ec);
    }
    else
        net::write(stream, net::buffer(body), ec);

    // Reads are asynchronous so that the stream's expiry bounds them (asio's
    // blocking reads wait forever).
    raw_reply r;
    beast::flat_buffer b;
    http::response_parser<http::string_body> p;
    stream.expires_after(std::chrono::seconds(30));
    bool done = false;
    http::async_read(stream, b, p,
                     [&](beast::error_code e, std::size_t)
                     {
                         ec = e;
                         done = true;
                     });
    ioc.run();
    if (!done || ec)
        throw std::runtime_error("no HTTP reply from the server: " + ec.message());
    r.res = p.release();
    if (r.res.keep_alive())
        return r;
    // Whatever the server still reads and drops, it sends nothing more and
    // then closes: the next read ends with eof, never with a second answer.
    char byte;
    stream.expires_after(std::chrono::seconds(15));
    stream.async_read_some(net::buffer(&byte, 1), [&](beast::error_code e, std::size_t) { ec = e; });
    ioc.restart();
    ioc.run();
    r.closed_after = ec == net::error::eof || ec == net::error::connection_reset;
    return r;
}

void check_too_large(raw_reply const& r)
{
    CHECK(r.res.result_int() == 413);
    auto const body = json::parse(r.res.body()).as_object();
    CHECK(text(body.at("error")) == "bad_request");
    CHECK(text(body.at("message")).find("larger than") != std::string::npos);
    CHECK_FALSE(r.res.keep_alive());
    CHECK(r.closed_after);
}

} // namespace

TEST_CASE("the whole multipart body counts toward --max-upload-mb, chunked or not",
          "[integration][files][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--max-upload-mb", "1"});
    std::string const big(3 << 20, 'x'); // 3 MiB, three times the limit
    std::string const small_file = file_part("a.txt", "text/plain", "a small file");

    SECTION("a big form field after the file, chunked")
    {
        check_too_large(post_multipart(server.port(), small_file + field_part("junk", big) + closing, true));
    }
    SECTION("a big preamble, chunked")
    {
        check_too_large(post_multipart(server.port(), big + "\r\n" + small_file + closing, true));
    }
    SECTION("a big epilogue after the closing boundary, chunked")
    {
        check_too_large(post_multipart(server.port(), small_file + closing + big, true));
    }
    SECTION("further file parts (skipped) count too, chunked")
    {
        check_too_large(post_multipart(
            server.port(), small_file + file_part("b.txt", "text/plain", big) + closing, true));
    }
    SECTION("a big form field with a Content-Length")
    {
        check_too_large(post_multipart(server.port(), small_file + field_part("junk", big) + closing, false));
    }
    SECTION("a file under the limit whose fields push the body over limit + 64 KiB")
    {
        // 1 MiB - 16 KiB of file plus 100 KiB of fields: the file fits, the body does not.
        auto const body = field_part("junk", std::string(100 * 1024, 'f')) +
                          file_part("c.txt", "text/plain", std::string((1 << 20) - 16 * 1024, 'c')) +
                          closing;
        check_too_large(post_multipart(server.port(), body, true));
        check_too_large(post_multipart(server.port(), body, false));
    }
    CHECK(stored_blobs(dir) == 0);

    SECTION("a file of exactly the limit with a few small fields is accepted")
    {
        auto const body = field_part("note", "hello") +
                          file_part("full.txt", "text/plain", std::string(1 << 20, 'z')) +
                          field_part("after", "bye") + closing;
        for (bool chunked : {true, false})
        {
            auto r = post_multipart(server.port(), body, chunked);
            CHECK(r.res.result_int() == 201);
            CHECK(json::parse(r.res.body()).at("size").as_int64() == (1 << 20));
        }
        CHECK(stored_blobs(dir) == 1);
    }
}
