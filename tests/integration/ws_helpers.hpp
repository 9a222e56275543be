#pragma once
// Test support: reading generations off a ws_client (ack, start, deltas with
// contiguous UTF-16 offsets, finish) and minting JWTs. Shared by the
// end-to-end tests that drive the real binary.
#include "server_process.hpp"

#include "chatstream/core/utf16.hpp"

#include <catch2/catch.hpp>
#include <jwt.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

namespace chatstream::test
{

inline std::string str(json::value const& v)
{
    return std::string(v.as_string());
}

inline json::object generate(std::string const& content, std::string const& id = "g")
{
    return {{"type", "generate"}, {"id", id}, {"content", content}};
}

struct stream_result
{
    json::object ack;
    std::string text;
    std::vector<json::object> events;
    json::object finish;
    std::size_t deltas = 0;
    std::string reasoning; ///< the reasoning-deltas, concatenated
    std::size_t reasoning_deltas = 0;
};

// Reads events up to the `finish` (of @p message_id when given), collecting
// the text and the reasoning; checks every delta is whole UTF-8 and, from
// @p first_offset (@p first_reasoning_offset) on when given, that offsets
// are contiguous UTF-16.
inline stream_result read_until_finish(ws_client& c, std::optional<std::uint64_t> first_offset = {},
                                       std::string const& message_id = {},
                                       std::optional<std::uint64_t> first_reasoning_offset = {})
{
    stream_result r;
    std::optional<std::uint64_t> u16 = first_offset;
    std::optional<std::uint64_t> reasoning_u16 = first_reasoning_offset;
    for (;;)
    {
        auto e = c.read();
        r.events.push_back(e);
        auto const type = str(e.at("type"));
        if (type == "text-delta")
        {
            auto const delta = str(e.at("delta"));
            CHECK(core::is_valid_utf8(delta));
            auto const offset = static_cast<std::uint64_t>(e.at("offset").as_int64());
            if (u16)
                CHECK(offset == *u16);
            u16 = offset + core::utf16_length(delta);
            r.text += delta;
            ++r.deltas;
        }
        if (type == "reasoning-delta")
        {
            auto const delta = str(e.at("delta"));
            CHECK(core::is_valid_utf8(delta));
            auto const offset = static_cast<std::uint64_t>(e.at("offset").as_int64());
            if (reasoning_u16)
                CHECK(offset == *reasoning_u16);
            reasoning_u16 = offset + core::utf16_length(delta);
            r.reasoning += delta;
            ++r.reasoning_deltas;
        }
        if (type == "finish" && (message_id.empty() || str(e.at("messageId")) == message_id))
        {
            r.finish = e;
            return r;
        }
    }
}

// Reads a generation after its request was sent: ack, start, then events up
// to its finish, offsets contiguous from 0.
inline stream_result read_generation(ws_client& c)
{
    auto ack = c.read_until("ack");
    auto const message_id = str(ack.at("messageId"));
    // A watching socket's `changed` events are another channel: they may
    // come before `start` (replies and changes are sent first).
    auto start = c.read();
    while (start.at("type").as_string() == "changed")
        start = c.read();
    CHECK(start.at("type").as_string() == "start");
    CHECK(str(start.at("messageId")) == message_id);
    auto r = read_until_finish(c, 0, message_id, 0);
    r.ack = std::move(ack);
    return r;
}

struct started
{
    std::string message_id;
    std::string text; ///< deltas received so far
};

// Sends a generate and reads until at least @p min_u16 UTF-16 units of text came.
inline started start_generation(ws_client& c, std::string const& content, std::uint64_t min_u16)
{
    c.send(generate(content));
    started s{str(c.read_until("ack").at("messageId")), {}};
    while (core::utf16_length(s.text) < min_u16)
    {
        auto e = c.read();
        if (e.at("type").as_string() == "text-delta")
            s.text += str(e.at("delta"));
    }
    return s;
}

/// An HS256 token under @p secret whose claims are the JSON object @p claims.
inline std::string make_jwt_with_claims(std::string const& secret, std::string const& claims)
{
    jwt_t* jwt = nullptr;
    jwt_new(&jwt);
    jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<unsigned char const*>(secret.data()),
                static_cast<int>(secret.size()));
    if (jwt_add_grants_json(jwt, claims.c_str()) != 0)
        throw std::runtime_error("bad claims " + claims);
    char* s = jwt_encode_str(jwt);
    std::string out = s;
    free(s);
    jwt_free(jwt);
    return out;
}

/// An HS256 token for @p sub that expires @p exp_offset seconds from now.
inline std::string make_jwt(std::string const& secret, std::string const& sub,
                            long exp_offset = 3600)
{
    jwt_t* jwt = nullptr;
    jwt_new(&jwt);
    jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<unsigned char const*>(secret.data()),
                static_cast<int>(secret.size()));
    jwt_add_grant(jwt, "sub", sub.c_str());
    jwt_add_grant_int(jwt, "exp", static_cast<long>(std::time(nullptr)) + exp_offset);
    char* s = jwt_encode_str(jwt);
    std::string out = s;
    free(s);
    jwt_free(jwt);
    return out;
}

} // namespace chatstream::test
