#pragma once
// Test support for the openai provider tests: a provider_sink that records
// every call in order, and fails the test on any call after the step ended.
#include "chatstream/streaming/provider.hpp"

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

namespace chatstream::test
{

struct recording_sink : streaming::provider_sink
{
    std::vector<std::string> log; // "text:..", "start:id:name", "delta:id:..", "call:id:name:args",
                                  // "finish:..", "error:.."
    std::vector<std::string> texts;      // each on_text piece
    std::vector<std::string> reasonings; // each on_reasoning piece
    std::string finish_reason;
    streaming::step_usage usage;
    std::string error;
    bool ended = false;
    int calls_after_end = 0;
    std::function<void()> after_text; // e.g. cancel from inside the sink

    void note(std::string s)
    {
        if (ended)
            ++calls_after_end;
        log.push_back(std::move(s));
    }
    void on_text(std::string_view t) override
    {
        texts.emplace_back(t);
        note("text:" + std::string(t));
        if (after_text)
            after_text();
    }
    void on_reasoning(std::string_view t) override
    {
        reasonings.emplace_back(t);
        note("reasoning:" + std::string(t));
    }
    void on_tool_input_start(std::string_view id, std::string_view name) override
    {
        note("start:" + std::string(id) + ":" + std::string(name));
    }
    void on_tool_input_delta(std::string_view id, std::string_view d) override
    {
        note("delta:" + std::string(id) + ":" + std::string(d));
    }
    void on_tool_call(std::string_view id, std::string_view name, std::string_view args) override
    {
        note("call:" + std::string(id) + ":" + std::string(name) + ":" + std::string(args));
    }
    void on_step_finish(std::string_view reason, streaming::step_usage u) override
    {
        note("finish:" + std::string(reason));
        finish_reason = reason;
        usage = u;
        ended = true;
    }
    void on_error(std::string_view message) override
    {
        note("error:" + std::string(message));
        error = message;
        ended = true;
    }

    std::string text() const
    {
        std::string out;
        for (auto const& t : texts)
            out += t;
        return out;
    }
    std::string reasoning() const
    {
        std::string out;
        for (auto const& t : reasonings)
            out += t;
        return out;
    }
};

} // namespace chatstream::test
