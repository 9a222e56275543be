// End-to-end: POST /api/files and GET /api/files/{id} on the real binary,
// attachments on generate, and the garbage collector.
#include "files_client.hpp"

#include "chatstream/storage/database.hpp"

#include <catch2/catch.hpp>

#include <filesystem>

using namespace chatstream;
using namespace chatstream::test;

namespace
{

std::string str(json::value const& v)
{
    return std::string(v.as_string());
}

std::string blob_path(temp_dir const& dir, std::string const& id)
{
    return (dir.path() / "files" / id.substr(0, 2) / id.substr(2)).string();
}

std::size_t blob_count(temp_dir const& dir)
{
    std::size_t n = 0;
    for (auto const& e : std::filesystem::recursive_directory_iterator(dir.path() / "files"))
        if (e.is_regular_file() && e.path().parent_path().filename() != "tmp")
            ++n;
    return n;
}

json::object attachment(std::string const& id, std::string const& name,
                        std::string const& type = "file")
{
    return {
        {"type", type}, {"name", name}, {"storageId", id}, {"mimeType", "text/plain"}, {"size", 1}};
}

} // namespace

TEST_CASE("upload and download round trip, dedup, headers", "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    std::string bytes;
    for (int i = 0; i < 300000; ++i)
        bytes += static_cast<char>(i * 31 + (i >> 8));

    auto up = upload_raw(server.port(), "alice", "data.csv", "text/csv", bytes);
    REQUIRE(up.status == 201);
    auto const meta = up.json_body();
    auto const id = str(meta.at("storageId"));
    CHECK(id.size() == 64);
    CHECK(str(meta.at("name")) == "data.csv");
    CHECK(str(meta.at("mimeType")) == "text/csv");
    CHECK(meta.at("size").as_int64() == static_cast<std::int64_t>(bytes.size()));
    CHECK(meta.at("metadata").as_object().empty());
    CHECK(up.header("location") == "/api/files/" + id);
    CHECK(std::filesystem::file_size(blob_path(dir, id)) == bytes.size());

    auto get = http_request(server.port(), http::verb::get, "/api/files/" + id + "?user=alice");
    REQUIRE(get.status == 200);
    CHECK(get.body == bytes);
    CHECK(get.header("content-type") == "text/csv");
    CHECK(get.header("content-length") == std::to_string(bytes.size()));
    CHECK(get.header("etag") == "\"" + id + "\"");
    CHECK(get.header("cache-control").starts_with("private"));
    CHECK(get.header("accept-ranges") == "bytes");

    auto again = http_request(server.port(), http::verb::get, "/api/files/" + id + "?user=alice",
                              {{"If-None-Match", "\"" + id + "\""}});
    CHECK(again.status == 304);
    CHECK(again.body.empty());

    auto head = http_request(server.port(), http::verb::head, "/api/files/" + id + "?user=alice");
    CHECK(head.status == 200);
    CHECK(head.header("content-length") == std::to_string(bytes.size()));

    // The same bytes again (another name, another user): one blob on disk.
    auto up2 = upload_raw(server.port(), "bob", "copy.csv", "text/csv", bytes);
    REQUIRE(up2.status == 201);
    CHECK(str(up2.json_body().at("storageId")) == id);
    CHECK(str(up2.json_body().at("name")) == "copy.csv");
    CHECK(blob_count(dir) == 1);

    // Multipart works too, and lands on the same blob.
    std::string const body = "--b0undary\r\n"
                             "Content-Disposition: form-data; name=\"file\"; filename=\"x.csv\"\r\n"
                             "Content-Type: text/csv\r\n\r\n" +
                             bytes + "\r\n--b0undary--\r\n";
    auto mp = http_request(server.port(), http::verb::post, "/api/files?user=carol",
                           {{"Content-Type", "multipart/form-data; boundary=b0undary"}}, body);
    REQUIRE(mp.status == 201);
    CHECK(str(mp.json_body().at("storageId")) == id);
    CHECK(str(mp.json_body().at("name")) == "x.csv");
    CHECK(blob_count(dir) == 1);
}

TEST_CASE("image uploads report their dimensions, a fake image is refused", "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto up = upload_raw(server.port(), "alice", "pic.png", "image/png", png_bytes(640, 480));
    REQUIRE(up.status == 201);
    auto const meta = up.json_body();
    CHECK(str(meta.at("type")) == "image");
    CHECK(meta.at("metadata").at("width").as_int64() == 640);
    CHECK(meta.at("metadata").at("height").as_int64() == 480);

    auto fake =
        upload_raw(server.port(), "alice", "pic.png", "image/png", "<html>not a png</html>");
    CHECK(fake.status == 415);
}

TEST_CASE("limits: 413 over the size limit, 415 outside the MIME allow-list, 400, 405, and "
          "a refused request that was read leaves the connection usable",
          "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--max-upload-mb", "1"});
    auto big = upload_raw(server.port(), "alice", "big.txt", "text/plain",
                          std::string((1 << 20) + 1, 'a'));
    CHECK(big.status == 413);
    CHECK(str(big.json_body().at("error")) == "bad_request");
    CHECK(upload_raw(server.port(), "alice", "ok.txt", "text/plain", std::string(1 << 20, 'a'))
              .status == 201);

    // Chunked: the size is only known while streaming.
    {
        net::io_context ioc;
        beast::tcp_stream stream(ioc);
        stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
        http::request<http::string_body> req(http::verb::post,
                                             "/api/files?user=alice&filename=c.txt", 11);
        req.set(http::field::host, "127.0.0.1");
        req.set(http::field::content_type, "text/plain");
        req.body() = std::string((1 << 20) + 10, 'c');
        req.chunked(true);
        beast::error_code ec;
        http::write(stream, req, ec);
        beast::flat_buffer b;
        http::response<http::string_body> res;
        http::read(stream, b, res, ec);
        CHECK(res.result_int() == 413);
    }

    auto exe = upload_raw(server.port(), "alice", "run.exe", "application/x-msdownload", "MZ....");
    CHECK(exe.status == 415);
    auto html = upload_raw(server.port(), "alice", "x.html", "text/html", "<script>");
    CHECK(html.status == 415);
    std::string const mp =
        "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.svg\"\r\n"
        "Content-Type: image/svg+xml\r\n\r\n<svg/>\r\n--b--\r\n";
    CHECK(http_request(server.port(), http::verb::post, "/api/files?user=alice",
                       {{"Content-Type", "multipart/form-data; boundary=b"}}, mp)
              .status == 415);
    CHECK(http_request(server.port(), http::verb::post, "/api/files?user=alice",
                       {{"Content-Type", "text/plain"}}, "no filename")
              .status == 400);
    CHECK(http_request(server.port(), http::verb::put, "/api/files?user=alice&filename=a.txt",
                       {{"Content-Type", "text/plain"}}, "x")
              .status == 405);
    CHECK(blob_count(dir) == 1); // only the 1 MiB upload was stored

    // One keep-alive connection: a request refused after its body was read
    // (415, a "PNG" that is not one), then an upload on the same
    // connection succeeds. (A request refused from its header alone
    // closes instead: its unread body would be parsed as the next request.)
    {
        net::io_context ioc;
        beast::tcp_stream stream(ioc);
        stream.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server.port()));
        stream.expires_after(std::chrono::seconds(15));
        auto exchange = [&](std::string const& target, std::string const& type, std::string body)
        {
            http::request<http::string_body> req(http::verb::post, target, 11);
            req.set(http::field::host, "127.0.0.1");
            req.set(http::field::content_type, type);
            req.body() = std::move(body);
            req.prepare_payload();
            http::write(stream, req);
            beast::flat_buffer b;
            http::response<http::string_body> res;
            http::read(stream, b, res);
            return res;
        };
        auto refused =
            exchange("/api/files?user=alice&filename=fake.png", "image/png", "not a png");
        CHECK(refused.result_int() == 415);
        CHECK(refused.keep_alive());
        auto again =
            exchange("/api/files?user=alice&filename=after.txt", "text/plain", "still here");
        CHECK(again.result_int() == 201);
    }
    CHECK(blob_count(dir) == 2);
}

TEST_CASE("files need a valid token when a JWT secret is set", "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"), {"--jwt-secret-env", "FILES_SECRET"},
                          {"FILES_SECRET=s3cret"});
    auto up = upload_raw(server.port(), "alice", "a.txt", "text/plain", "hello");
    CHECK(up.status == 401);
    CHECK(up.header("www-authenticate") == "Bearer");
    auto get = http_request(server.port(), http::verb::get, "/api/files/" + std::string(64, 'a'));
    CHECK(get.status == 401);
}

TEST_CASE("another user's file is 404, so is an unknown one", "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const id = upload_ok(server.port(), "alice", "secret.txt", "text/plain", "alice only");
    CHECK(http_request(server.port(), http::verb::get, "/api/files/" + id + "?user=alice").status ==
          200);
    auto bob = http_request(server.port(), http::verb::get, "/api/files/" + id + "?user=bob");
    CHECK(bob.status == 404);
    CHECK(str(bob.json_body().at("error")) == "not_found");
    CHECK(http_request(server.port(), http::verb::get,
                       "/api/files/" + std::string(64, 'f') + "?user=alice")
              .status == 404);
    CHECK(http_request(server.port(), http::verb::get, "/api/files/../../chat.db?user=alice")
              .status == 404);
    CHECK(http_request(server.port(), http::verb::get, "/api/files/?user=alice").status == 404);

    // Bob may not attach it either.
    ws_client b(server.port(), "/ws?user=bob");
    b.send(json::object{{"type", "generate"},
                        {"id", "g"},
                        {"content", "hi"},
                        {"attachments", json::array{attachment(id, "stolen.txt")}}});
    auto e = b.read();
    CHECK(str(e.at("type")) == "error");
    CHECK(str(e.at("code")) == "not_found");
    CHECK(str(e.at("message")).find("attachments[0]") != std::string::npos);
    storage::database db(dir.file("chat.db"), storage::open_mode::read_write);
    auto& q =
        db.prepare("SELECT (SELECT count(*) FROM messages), (SELECT count(*) FROM attachments)");
    REQUIRE(q.executeStep());
    CHECK(q.getColumn(0).getInt() == 0); // nothing written
    CHECK(q.getColumn(1).getInt() == 0);
}

TEST_CASE("Range requests: 206 with the right bytes, 416 when unsatisfiable",
          "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    std::string bytes;
    for (int i = 0; i < 200000; ++i)
        bytes += static_cast<char>('a' + i % 26);
    auto const id = upload_ok(server.port(), "alice", "abc.txt", "text/plain", bytes);
    auto const url = "/api/files/" + id + "?user=alice";

    auto r = http_request(server.port(), http::verb::get, url, {{"Range", "bytes=100-199"}});
    REQUIRE(r.status == 206);
    CHECK(r.body == bytes.substr(100, 100));
    CHECK(r.header("content-range") == "bytes 100-199/200000");
    CHECK(r.header("content-length") == "100");

    r = http_request(server.port(), http::verb::get, url, {{"Range", "bytes=-5"}});
    REQUIRE(r.status == 206);
    CHECK(r.body == bytes.substr(bytes.size() - 5));

    r = http_request(server.port(), http::verb::get, url, {{"Range", "bytes=150000-"}});
    REQUIRE(r.status == 206);
    CHECK(r.body == bytes.substr(150000));

    r = http_request(server.port(), http::verb::get, url, {{"Range", "bytes=200000-"}});
    CHECK(r.status == 416);
    CHECK(r.header("content-range") == "bytes */200000");

    // A stale If-Range: the whole file.
    r = http_request(server.port(), http::verb::get, url,
                     {{"Range", "bytes=0-9"}, {"If-Range", "\"other\""}});
    CHECK(r.status == 200);
    CHECK(r.body.size() == bytes.size());
}

TEST_CASE("generate writes attachment rows in position order, the message owner can read them",
          "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"));
    auto const a = upload_ok(server.port(), "alice", "one.txt", "text/plain", "first");
    auto const b = upload_ok(server.port(), "alice", "two.png", "image/png", png_bytes(2, 3));
    auto const c = upload_ok(server.port(), "alice", "three.txt", "text/plain", "third");
    ws_client ws(server.port(), "/ws?user=alice");
    ws.send(json::object{
        {"type", "generate"},
        {"id", "g"},
        {"content", "look"},
        {"attachments", json::array{attachment(c, "three.txt"), attachment(a, "one.txt"),
                                    attachment(b, "two.png", "image")}}});
    auto ack = ws.read_until("ack");
    ws.read_until("finish", str(ack.at("messageId")));
    auto rows = ws.query("getAttachments", {{"messageId", ack.at("userMessageId")}});
    REQUIRE(str(rows.at("type")) == "result");
    auto const& arr = rows.at("data").as_array();
    REQUIRE(arr.size() == 3);
    CHECK(str(arr[0].at("storageId")) == c);
    CHECK(str(arr[1].at("storageId")) == a);
    CHECK(str(arr[2].at("storageId")) == b);
    CHECK(arr[2].at("position").as_int64() == 2);
}

TEST_CASE("deleting messages and conversations lets the sweep collect their files",
          "[integration][files]")
{
    temp_dir dir;
    server_process server(dir.file("chat.db"),
                          {"--unattached-upload-ttl", "2", "--file-sweep-interval", "1"});
    auto const kept = upload_ok(server.port(), "alice", "kept.txt", "text/plain", "kept");
    auto const dropped = upload_ok(server.port(), "alice", "dropped.txt", "text/plain", "dropped");
    auto const in_conv =
        upload_ok(server.port(), "alice", "conv.txt", "text/plain", "conversation");
    auto const unattached =
        upload_ok(server.port(), "alice", "never.txt", "text/plain", "never attached");
    ws_client ws(server.port(), "/ws?user=alice");
    auto gen = [&](std::vector<std::string> const& ids)
    {
        json::array atts;
        for (auto const& id : ids)
            atts.push_back(attachment(id, "f.txt"));
        ws.send(json::object{
            {"type", "generate"}, {"id", "g"}, {"content", "hi"}, {"attachments", atts}});
        auto ack = ws.read_until("ack");
        ws.read_until("finish", str(ack.at("messageId")));
        return ack;
    };
    auto const m1 = gen({kept});
    auto const m2 = gen({dropped, kept});
    auto const m3 = gen({in_conv});

    // Rows disappear however they do (here plain SQL, cascading from
    // messages and conversations); the sweep only looks at what is left.
    {
        storage::database db(dir.file("chat.db"), storage::open_mode::read_write);
        db.exec("DELETE FROM messages WHERE id = '" + str(m2.at("userMessageId")) + "'");
        db.exec("DELETE FROM conversations WHERE id = '" + str(m3.at("conversationId")) + "'");
    }
    auto const deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (std::chrono::steady_clock::now() < deadline &&
           (std::filesystem::exists(blob_path(dir, dropped)) ||
            std::filesystem::exists(blob_path(dir, in_conv)) ||
            std::filesystem::exists(blob_path(dir, unattached))))
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK_FALSE(std::filesystem::exists(blob_path(dir, dropped)));
    CHECK_FALSE(std::filesystem::exists(blob_path(dir, in_conv)));
    CHECK_FALSE(std::filesystem::exists(blob_path(dir, unattached)));
    CHECK(std::filesystem::exists(blob_path(dir, kept))); // still referenced by m1
    CHECK(
        http_request(server.port(), http::verb::get, "/api/files/" + kept + "?user=alice").status ==
        200);
    CHECK(http_request(server.port(), http::verb::get, "/api/files/" + dropped + "?user=alice")
              .status == 404);
    // A collected upload cannot be attached any more.
    ws.send(json::object{{"type", "generate"},
                         {"id", "g"},
                         {"content", "again"},
                         {"attachments", json::array{attachment(unattached, "never.txt")}}});
    CHECK(str(ws.read().at("code")) == "not_found");
    (void)m1;
}
