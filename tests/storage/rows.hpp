#pragma once
// Test support for the storage suites: a conversation or a message row
// inserted with only the fields a test cares about.
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/repositories.hpp"

#include <cstdint>
#include <string>

namespace chatstream::test
{

inline storage::conversation_row insert_conversation(storage::database& db,
                                                     std::string const& user_id, std::int64_t at)
{
    storage::conversation_row c;
    c.id = core::new_id();
    c.user_id = user_id;
    c.created_at = c.updated_at = at;
    storage::conversations::insert(db, c);
    return c;
}

inline storage::message_row insert_message(storage::database& db,
                                           std::string const& conversation_id,
                                           std::string const& user_id, std::string const& status,
                                           std::int64_t at, std::string const& content = {})
{
    storage::message_row m;
    m.id = core::new_id();
    m.conversation_id = conversation_id;
    m.user_id = user_id;
    m.role = "assistant";
    m.status = status;
    m.content = content;
    m.created_at = m.updated_at = at;
    storage::messages::insert(db, m);
    return m;
}

} // namespace chatstream::test
