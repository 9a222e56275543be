#include "chatstream/streaming/protocol.hpp"

#include <boost/json.hpp>
#include <catch2/catch.hpp>

using namespace chatstream::streaming;

namespace
{

template <class T> T parse_ok(request_parser& p, std::string_view text)
{
    auto r = p.parse(text);
    INFO(text);
    if (auto* e = std::get_if<protocol_error>(&r))
        FAIL(e->message);
    auto& req = std::get<client_request>(r);
    REQUIRE(std::holds_alternative<T>(req));
    return std::get<T>(req);
}

protocol_error parse_err(request_parser& p, std::string_view text)
{
    auto r = p.parse(text);
    INFO(text);
    REQUIRE(std::holds_alternative<protocol_error>(r));
    return std::get<protocol_error>(r);
}

} // namespace

TEST_CASE("generate requests parse with attachments", "[streaming][protocol]")
{
    request_parser p;
    auto g = parse_ok<generate_request>(
        p, R"({"type":"generate","id":"r1","conversationId":"c","content":"héllo","model":"m",
              "attachments":[{"type":"image","name":"a.png","storageId":"s","mimeType":"image/png","size":3,
                              "metadata":{ "width" : 2 }}]})");
    CHECK(g.id == R"("r1")");
    CHECK(g.conversation_id == "c");
    CHECK(g.content == "héllo");
    CHECK(g.model == "m");
    REQUIRE(g.attachments.size() == 1);
    CHECK(g.attachments[0].storage_id == "s");
    CHECK(g.attachments[0].metadata == R"({"width":2})");
}

TEST_CASE("other requests parse", "[streaming][protocol]")
{
    request_parser p;
    auto s =
        parse_ok<subscribe_request>(p, R"({"type":"subscribe","messageId":"m","fromOffset":12})");
    CHECK(s.message_id == "m");
    CHECK(s.from_offset == 12);
    CHECK_FALSE(s.id);
    CHECK(parse_ok<cancel_request>(p, R"({"type":"cancel","id":7,"messageId":"m"})").id == "7");
    auto q = parse_ok<query_request>(
        p,
        R"({"type":"query","id":"q","name":"getToolCalls","args":{"messageId":"m","includePartial":true}})");
    CHECK(q.name == query_name::get_tool_calls);
    CHECK(q.include_partial);
    auto l = parse_ok<query_request>(
        p,
        R"({"type":"query","id":"q","name":"listMessages","args":{"conversationId":"c","limit":2,"cursor":"x"}})");
    CHECK(l.limit == 2);
    CHECK(l.cursor == "x");
    CHECK(parse_ok<query_request>(p, R"({"type":"query","id":"q","name":"listConversations"})")
              .limit == 50);
    parse_ok<ping_request>(p, R"({"type":"ping"})");
}

TEST_CASE("bad frames give precise bad_request errors", "[streaming][protocol]")
{
    request_parser p;
    CHECK(parse_err(p, "{").message.find("not valid JSON") != std::string::npos);
    CHECK(parse_err(p, "\"x\"").message == "frame must be a JSON object, got string");
    CHECK(parse_err(p, "{}").message == "missing field 'type'");
    CHECK(parse_err(p, R"({"type":"nope","id":"r"})").id == R"("r")");
    CHECK(parse_err(p, R"({"type":"generate","content":""})").message ==
          "field 'content' must not be empty");
    CHECK(parse_err(p, R"({"type":"generate","content":"x","conversationId":3})").message ==
          "field 'conversationId' must be a string, got number");
    CHECK(
        parse_err(
            p,
            R"({"type":"generate","content":"x","attachments":[{"type":"image","name":"n","storageId":"s","mimeType":"m","size":-1}]})")
            .message == "attachments[0]: 'size' must not be negative");
    CHECK(
        parse_err(
            p,
            R"({"type":"generate","content":"x","attachments":[{"type":"image","name":"n","storageId":"s","mimeType":"m","size":1,"metadata":[]}]})")
            .message == "attachments[0]: 'metadata' must be an object");
    CHECK(parse_err(p, R"({"type":"query","id":"q","name":"getMessage","args":[]})").message ==
          "field 'args' must be an object, got array");
    CHECK(
        parse_err(
            p,
            R"({"type":"query","id":"q","name":"getToolCalls","args":{"messageId":"m","includePartial":1}})")
            .message == "args: field 'includePartial' must be a boolean, got number");
    CHECK(parse_err(p, R"({"type":"mutate","id":"m"})").message == "missing field 'name'");
    CHECK(parse_err(p, R"({"type":"mutate","id":"m","name":"dropAll"})").message ==
          "unknown mutation 'dropAll'");
    CHECK(parse_err(p, R"({"type":"mutate","id":"m","name":"deleteMessage"})").message ==
          "missing field 'args'");
    CHECK(parse_err(
              p, R"({"type":"mutate","name":"updateConversation","args":{"conversationId":"c"}})")
              .message.starts_with("args: nothing to update"));
    CHECK(
        parse_err(
            p,
            R"({"type":"mutate","name":"updateConversation","args":{"conversationId":"c","title":""}})")
            .message == "args: field 'title' must not be empty");
    CHECK(
        parse_err(
            p,
            R"({"type":"mutate","name":"updateConversation","args":{"conversationId":"c","pinned":"yes"}})")
            .message == "args: field 'pinned' must be a boolean, got string");
    CHECK(parse_err(p, R"({"type":"query","id":"u","name":"getUsage","args":{"from":"2026-1-01"}})")
              .message == "args: field 'from' must be a UTC day YYYY-MM-DD");
    auto const long_id = R"({"type":"ping","id":")" + std::string(200, 'x') + "\"}";
    CHECK(parse_err(p, long_id).message == "field 'id' is longer than 128 bytes");
    for (auto const& e : {parse_err(p, "{"), parse_err(p, "{}")})
        CHECK(e.code == wire_error::bad_request);
}

TEST_CASE("events are valid JSON with escaped text", "[streaming][protocol]")
{
    auto check = [](frame const& f)
    {
        INFO(*f.data);
        return boost::json::parse(*f.data).as_object();
    };
    auto d = check(events::text_delta("m", 3, "a\"b\\c\n🙂"));
    CHECK(d.at("delta").as_string() == "a\"b\\c\n🙂");
    CHECK(d.at("offset").as_int64() == 3);
    auto f = check(events::finish("m", {"error", "error", 2, 5, std::string("boom")}));
    CHECK(f.at("usage").at("outputTokens").as_int64() == 5);
    CHECK(f.at("error").as_string() == "boom");
    auto e =
        check(events::error(std::string("42"), std::string_view("m"), wire_error::not_found, "x"));
    CHECK(e.at("id").as_int64() == 42);
    CHECK(e.at("code").as_string() == "not_found");
    check(events::ack(std::string(R"("r")"), "c", "u", "m"));
    check(events::tool_input_available("m", "t", "calculator", R"({"expression":"1"})", 4));
    check(events::tool_output_available("m", "t", R"({"success":true})"));
    check(events::tool_output_error("m", "t", "bad"));
    check(events::tool_input_delta("m", "t", "{\"a"));
    check(events::result({}, "[]"));
    check(events::pong({}));
}

TEST_CASE("wire errors map from storage errors", "[streaming][protocol]")
{
    CHECK(to_string(wire_error::quota_exceeded) == "quota_exceeded");
    CHECK(to_wire_error(make_error_code(wire_error::conflict)) == wire_error::conflict);
    CHECK(to_wire_error(std::make_error_code(std::errc::io_error)) == wire_error::internal);
}
