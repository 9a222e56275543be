#pragma once
// JSON shapes of stored rows, shared by query results and `changed` events
// (docs/design.md §6; camelCase keys, stored JSON columns as values).
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/sources.hpp"
#include "chatstream/storage/types.hpp"
#include "chatstream/storage/usage.hpp"
#include "chatstream/streaming/protocol.hpp"

#include <boost/json/object.hpp>

namespace chatstream::streaming::detail
{

boost::json::object to_json(storage::conversation_row const& c);
boost::json::object to_json(storage::message_row const& m);
/// The UI shape: arguments/result as JSON *strings*, as the chat UI consumes.
boost::json::object to_json(storage::tool_calls::ui_tool_call const& t);
boost::json::object to_json(storage::attachment_row const& a);
boost::json::object to_json(storage::usage::usage_row const& u);
/// A citation with its link preview (`metadata`, null until one exists).
boost::json::object to_json(storage::sources::with_metadata const& s);
/// `getMessage`: the message with its `sources` (docs/design.md §9).
boost::json::object to_json(storage::message_row const& m,
                            std::vector<storage::sources::with_metadata> const& sources);
/// A string, or null when absent.
boost::json::value nullable(std::optional<std::string> const& v);

/// `changed` events of the watch feed built from rows: the whole row on
/// insert, only the counters a new or removed message changes on update.
frame conversation_inserted(storage::conversation_row const& c);
frame message_inserted(storage::message_row const& m);
frame conversation_counters_changed(storage::conversation_row const& c);

} // namespace chatstream::streaming::detail
