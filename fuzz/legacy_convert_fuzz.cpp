// libFuzzer target: one legacy message's JSON columns (the input of
// migration 001). Any input either converts or yields a quarantine reason;
// converted rows always hold valid, canonical JSON and unique natural keys.
#include "chatstream/storage/legacy.hpp"

#include "chatstream/core/json.hpp"

#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(std::uint8_t const* data, std::size_t size)
{
    using namespace chatstream::storage;
    // Split the input into the three columns at 0x00 bytes; a missing
    // column is NULL.
    std::string const in(reinterpret_cast<char const*>(data), size);
    legacy::arrays cols;
    std::optional<std::string>* slots[] = {&cols.attachments, &cols.tool_calls,
                                           &cols.partial_tool_calls};
    std::size_t start = 0;
    for (auto* slot : slots)
    {
        if (start > in.size())
            break;
        auto end = in.find('\0', start);
        if (end == std::string::npos)
            end = in.size();
        *slot = in.substr(start, end - start);
        start = end + 1;
    }
    legacy::message_context ctx{"m1", "c1", "u1", 1700000000000};
    auto out = legacy::convert(ctx, cols);
    if (auto* reason = std::get_if<std::string>(&out))
    {
        if (reason->empty())
            std::abort();
        return 0;
    }
    auto const& rows = std::get<legacy::rows>(out);
    std::set<std::string> ids;
    for (auto const& t : rows.tool_calls)
    {
        if (!ids.insert(t.tool_call_id).second)
            std::abort(); // one row per id
        if (chatstream::core::canonical_json(t.args) != t.args)
            std::abort();
        if (t.result && chatstream::core::canonical_json(*t.result) != *t.result)
            std::abort();
    }
    std::int64_t pos = 0;
    for (auto const& a : rows.attachments)
        if (a.position != pos++)
            std::abort();
    return 0;
}
