// libFuzzer target: the client frame parser and the replies built from what
// it parsed, i.e. everything a session does with a frame short of I/O and
// storage. Properties:
//  - parse never throws and is deterministic with a reused parser;
//  - every reply (error, pong, ack, result) is one valid JSON object that
//    echoes the request id exactly as the client spelled it;
//  - a generate's content, streamed as text-delta events cut at arbitrary
//    code point boundaries and merged by the outbound queue, arrives intact
//    with contiguous UTF-16 offsets.
#include "chatstream/streaming/protocol.hpp"

#include "chatstream/core/utf16.hpp"
#include "chatstream/streaming/outbound_queue.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace
{

using namespace chatstream::streaming;
namespace json = boost::json;

void require(bool ok)
{
    if (!ok)
        std::abort();
}

// Any JSON the parser accepted (simdjson: depth up to 1024) must parse here too.
json::value parse_json(std::string_view text)
{
    json::parse_options opt;
    opt.max_depth = 4096;
    boost::system::error_code ec;
    auto v = json::parse(text, ec, {}, opt);
    require(!ec);
    return v;
}

json::object parse_frame(frame const& f)
{
    return parse_json(*f.data).as_object();
}

// The id as it appears in a reply, re-serialized, equals the id text kept
// by the parser (a JSON string or integer literal).
void check_id(json::object const& o, request_id const& id)
{
    if (!id)
        return require(!o.contains("id"));
    require(o.contains("id"));
    require(json::serialize(o.at("id")) == json::serialize(parse_json(*id)));
}

request_id id_of(client_request const& r)
{
    return std::visit([](auto const& x) { return x.id; }, r);
}

// Streams @p text as deltas of at most @p piece bytes (never splitting a code
// point) through one outbound queue, draining every few pushes so merges happen.
void check_stream(std::string_view text, std::size_t piece)
{
    outbound_queue q({64, 1u << 20, 256});
    std::string received;
    std::uint64_t expect_offset = 0;
    auto drain = [&](std::size_t keep)
    {
        while (q.size() > keep)
        {
            auto f = q.pop();
            auto o = parse_frame(f);
            require(o.at("type").as_string() == "text-delta");
            require(o.at("messageId").as_string() == "m-1");
            require(static_cast<std::uint64_t>(o.at("offset").as_int64()) == expect_offset);
            std::string_view delta = o.at("delta").as_string();
            expect_offset += chatstream::core::utf16_length(delta);
            received += delta;
        }
    };
    std::uint64_t offset = 0;
    std::size_t i = 0;
    std::size_t n = 0;
    while (i < text.size())
    {
        auto len = chatstream::core::complete_utf8_prefix(text.substr(i, piece));
        if (len == 0) // a code point longer than the piece
            len = chatstream::core::complete_utf8_prefix(text.substr(i, 4));
        require(len > 0);
        auto const delta = text.substr(i, len);
        require(q.push(events::text_delta("m-1", offset, delta)));
        offset += chatstream::core::utf16_length(delta);
        i += len;
        if (++n % 5 == 0)
            drain(1);
    }
    drain(0);
    require(received == text);
    require(expect_offset == offset);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    static request_parser parser;
    std::string_view const text(reinterpret_cast<char const*>(data), size);
    auto const first = parser.parse(text);
    auto const second = parser.parse(text);
    require(first.index() == second.index());

    if (auto const* e = std::get_if<protocol_error>(&first))
    {
        require(!e->message.empty());
        require(e->id == std::get<protocol_error>(second).id);
        auto o = parse_frame(events::error(e->id, std::nullopt, e->code, e->message));
        require(o.at("type").as_string() == "error");
        require(o.at("message").as_string() == e->message);
        check_id(o, e->id);
        return 0;
    }

    auto const& req = std::get<client_request>(first);
    auto const id = id_of(req);
    check_id(parse_frame(events::pong(id)), id);
    check_id(parse_frame(events::result(id, "{\"ok\":true}")), id);
    auto err = parse_frame(events::error(id, std::string_view("m-1"), wire_error::internal, "x"));
    check_id(err, id);

    if (auto const* g = std::get_if<generate_request>(&req))
    {
        require(chatstream::core::is_valid_utf8(g->content));
        auto ack = parse_frame(events::ack(id, g->conversation_id.value_or("c"), "u", "m"));
        check_id(ack, id);
        if (g->conversation_id)
            require(ack.at("conversationId").as_string() == *g->conversation_id);
        for (auto const& a : g->attachments)
            if (a.metadata)
                require(parse_json(*a.metadata).is_object());
        check_stream(g->content, size % 7 + 1);
    }
    return 0;
}
