// Hostile uploads and attachments on the real binary (issue 20, findings 8
// and 9): every byte of a multipart body counts toward --max-upload-mb,
// chunked or not, and attachment rows record what was stored, not what the
// client claims, under a sanitised name.
#include "files_client.hpp"

#include "chatstream/storage/database.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace chatstream;
using namespace chatstream::test;

namespace
{

std::string text(json::value const& v)
{
    return std::string(v.as_string());
}

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
    stream.async_read_some(net::buffer(&byte, 1),
                           [&](beast::error_code e, std::size_t) { ec = e; });
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

json::array attachments_of(ws_client& ws, json::array const& atts)
{
    ws.send(json::object{
        {"type", "generate"}, {"id", "g"}, {"content", "look"}, {"attachments", atts}});
    auto ack = ws.read_until("ack");
    ws.read_until("finish", text(ack.at("messageId")));
    auto rows = ws.query("getAttachments", {{"messageId", ack.at("userMessageId")}});
    REQUIRE(text(rows.at("type")) == "result");
    return rows.at("data").as_array();
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
        check_too_large(
            post_multipart(server.port(), small_file + field_part("junk", big) + closing, true));
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
        check_too_large(
            post_multipart(server.port(), small_file + field_part("junk", big) + closing, false));
    }
    SECTION("a file under the limit whose fields push the body over limit + 64 KiB")
    {
        // 1 MiB - 16 KiB of file plus 100 KiB of fields: the file fits, the body does not.
        auto const body =
            field_part("junk", std::string(100 * 1024, 'f')) +
            file_part("c.txt", "text/plain", std::string((1 << 20) - 16 * 1024, 'c')) + closing;
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

TEST_CASE(
    "attachment rows store the uploaded file's type, MIME type and size, and a sanitised name",
    "[integration][files][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    std::string const note_bytes(33, 't');
    auto const note = upload_ok(server.port(), "alice", "note.txt", "text/plain", note_bytes);
    ws_client ws(server.port(), "/ws?user=alice");

    SECTION("the claim of finding 9: image, image/svg+xml, ../../evil.svg, 2^53-1 bytes")
    {
        auto const rows =
            attachments_of(ws, json::array{json::object{{"type", "image"},
                                                        {"name", "../../evil.svg"},
                                                        {"storageId", note},
                                                        {"mimeType", "image/svg+xml"},
                                                        {"size", 9007199254740991LL}}});
        REQUIRE(rows.size() == 1);
        auto const& a = rows[0].as_object();
        CHECK(text(a.at("type")) == "file");
        CHECK(text(a.at("mimeType")) == "text/plain");
        CHECK(a.at("size").as_int64() == 33);
        CHECK(text(a.at("name")) == "evil.svg");

        // The stored row itself, not only its JSON.
        storage::database db(dir.file("chat.db"), storage::open_mode::read_only);
        auto& q = db.prepare("SELECT type, mime_type, size, name FROM attachments");
        REQUIRE(q.executeStep());
        CHECK(q.getColumn(0).getString() == "file");
        CHECK(q.getColumn(1).getString() == "text/plain");
        CHECK(q.getColumn(2).getInt64() == 33);
        CHECK(q.getColumn(3).getString() == "evil.svg");
    }

    SECTION("names lose directories, control characters and leading dots, and are capped")
    {
        std::string const long_name(1000, 'n');
        std::string accents;
        for (int i = 0; i < 200; ++i)
            accents += "\xC3\xA9"; // é: the cap must not split it
        std::vector<std::pair<std::string, std::string>> const cases = {
            {"..\\..\\windows.txt", "windows.txt"},
            {"a/b/../c.txt", "c.txt"},
            {"C:\\Users\\x\\..\\report.txt", "report.txt"},
            {std::string("c\x01t\x1fl\x7f.txt"), "ctl.txt"},
            {"\xC2\x85next.txt", "next.txt"},   // C1 NEL
            {"\xE2\x80\xAEtxt.exe", "txt.exe"}, // RIGHT-TO-LEFT OVERRIDE
            {"...hidden", "hidden"},
            {" . .x", "x"},
            {"..", "note.txt"}, // nothing left: the uploaded name
            {"../", "note.txt"},
            {"\x01\x02", "note.txt"},
            {long_name, std::string(255, 'n')},
            {accents, accents.substr(0, 254)},
        };
        json::array atts;
        for (auto const& [claimed, expected] : cases)
            atts.push_back(json::object{{"type", "file"},
                                        {"name", claimed},
                                        {"storageId", note},
                                        {"mimeType", "text/plain"},
                                        {"size", 33}});
        auto const rows = attachments_of(ws, atts);
        REQUIRE(rows.size() == cases.size());
        for (std::size_t i = 0; i < cases.size(); ++i)
        {
            INFO("attachments[" << i << "]");
            CHECK(text(rows[i].at("name")) == cases[i].second);
        }
    }

    SECTION("an image keeps its stored type and dimensions, the client's other metadata stays")
    {
        auto const png = png_bytes(640, 480);
        auto const pic = upload_ok(server.port(), "alice", "pic.png", "image/png", png);
        auto const rows = attachments_of(
            ws, json::array{json::object{
                    {"type", "audio"},
                    {"name", "pic.png"},
                    {"storageId", pic},
                    {"mimeType", "image/gif"},
                    {"size", 1},
                    {"metadata", json::object{{"width", 1}, {"height", 2}, {"prompt", "a cat"}}}}});
        REQUIRE(rows.size() == 1);
        auto const& a = rows[0].as_object();
        CHECK(text(a.at("type")) == "image");
        CHECK(text(a.at("mimeType")) == "image/png");
        CHECK(a.at("size").as_int64() == static_cast<std::int64_t>(png.size()));
        CHECK(a.at("metadata").at("width").as_int64() == 640);
        CHECK(a.at("metadata").at("height").as_int64() == 480);
        CHECK(text(a.at("metadata").at("prompt")) == "a cat");
    }

    SECTION("re-attaching a file already attached records the stored values again")
    {
        attachments_of(ws, json::array{json::object{{"type", "file"},
                                                    {"name", "first.txt"},
                                                    {"storageId", note},
                                                    {"mimeType", "text/plain"},
                                                    {"size", 33}}});
        // Once collected-proof by the attachment, the uploads row is not needed.
        {
            storage::database db(dir.file("chat.db"), storage::open_mode::read_write);
            db.exec("DELETE FROM uploads");
        }
        auto const rows = attachments_of(ws, json::array{json::object{{"type", "audio"},
                                                                      {"name", "/"},
                                                                      {"storageId", note},
                                                                      {"mimeType", "audio/mpeg"},
                                                                      {"size", 5}}});
        REQUIRE(rows.size() == 1);
        CHECK(text(rows[0].at("type")) == "file");
        CHECK(text(rows[0].at("mimeType")) == "text/plain");
        CHECK(rows[0].at("size").as_int64() == 33);
        CHECK(text(rows[0].at("name")) == "first.txt"); // the earlier attachment's name
    }
}

TEST_CASE("upload names follow the same rule", "[integration][files][hostile]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto raw = upload_raw(server.port(), "alice", "..%2F..%2F.evil.txt", "text/plain", "x");
    REQUIRE(raw.status == 201);
    CHECK(text(raw.json_body().at("name")) == "evil.txt");

    std::string const mp = file_part("..\\..\\..hidden.txt", "text/plain", "y") + closing;
    auto multi = http_request(server.port(), http::verb::post, "/api/files?user=alice",
                              {{"Content-Type", "multipart/form-data; boundary=b"}}, mp);
    REQUIRE(multi.status == 201);
    CHECK(text(multi.json_body().at("name")) == "hidden.txt");

    auto dots = upload_raw(server.port(), "alice", "...", "text/plain", "z");
    REQUIRE(dots.status == 201);
    CHECK(text(dots.json_body().at("name")) == "file");

    auto long_name =
        upload_raw(server.port(), "alice", std::string(300, 'l') + ".txt", "text/plain", "w");
    REQUIRE(long_name.status == 201);
    CHECK(text(long_name.json_body().at("name")) == std::string(255, 'l'));
}
