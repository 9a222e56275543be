#pragma once
// `mutate` (docs/design.md §6, issue 12): conversation lifecycle writes.
#include "chatstream/streaming/protocol.hpp"

#include <memory>
#include <string>

namespace chatstream::storage
{
class writer;
}

namespace chatstream::streaming
{
class stream_hub;
class change_feed;
class subscriber;
} // namespace chatstream::streaming

namespace chatstream::streaming::detail
{

struct mutation_context
{
    storage::writer& writer;
    stream_hub& hub;
    change_feed& changes;
};

/// Runs @p req for @p user_id: one writer job that checks ownership (someone
/// else's ids are `not_found`) and running generations (`conflict`), then
/// replies `result` to @p requester and publishes the `changed` events once
/// committed. regenerate/retry go to the hub, which then streams.
void run_mutation(mutation_context const& ctx, std::string const& user_id, mutate_request req,
                  std::weak_ptr<subscriber> requester);

} // namespace chatstream::streaming::detail
