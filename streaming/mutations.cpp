#include "detail/mutations.hpp"

#include "detail/row_json.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/core/ids.hpp"
#include "chatstream/storage/error.hpp"
#include "chatstream/storage/nodes.hpp"
#include "chatstream/storage/repositories.hpp"
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/generation.hpp"

#include <boost/json.hpp>

namespace chatstream::streaming::detail
{
namespace
{

namespace json = boost::json;

/// What a mutation job produces, read by its completion.
struct outcome
{
    std::string user_id;
    json::value data;           ///< the `result` payload
    std::vector<frame> changes; ///< published once committed
    std::string why;            ///< the message of a refused job
};

void refuse_if_running(storage::database& db, stream_hub const& hub,
                       std::string const& conversation_id)
{
    // Another node may run it: its claim is in `generations`.
    if (hub.running_in(conversation_id) ||
        (storage::serves_several_nodes(db.dialect()) &&
         storage::nodes::busy_in_conversation(db, conversation_id)))
        throw storage::storage_error(storage::errc::conflict,
                                     "a generation is running in conversation " + conversation_id +
                                         "; cancel it first");
}

// The fields an update touched, for a small `changed` delta.
json::object patched_fields(mutate_request const& r, storage::conversation_row const& c)
{
    json::object o{{"updatedAt", c.updated_at}};
    auto const row = to_json(c);
    if (r.title)
        o["title"] = row.at("title");
    if (r.pinned)
        o["pinned"] = row.at("pinned");
    if (r.archived)
        o["archived"] = row.at("archived");
    if (r.starred)
        o["starred"] = row.at("starred");
    if (r.model)
        o["model"] = row.at("model");
    if (r.system_prompt)
        o["systemPrompt"] = row.at("systemPrompt");
    return o;
}

void apply(storage::database& db, stream_hub const& hub, mutate_request const& r, outcome& out)
{
    auto const now = core::now_ms();
    auto const& user = out.user_id;
    auto not_found = [](std::string const& what)
    { return storage::storage_error(storage::errc::not_found, "no such " + what); };
    switch (r.name)
    {
    case mutation_name::create_conversation:
    {
        storage::conversation_row c;
        c.id = core::new_id();
        c.user_id = user;
        if (r.title)
            c.title = *r.title;
        if (r.model)
            c.model = *r.model;
        if (r.system_prompt)
            c.system_prompt = *r.system_prompt;
        c.created_at = c.updated_at = now;
        storage::conversations::insert(db, c);
        out.data = to_json(c);
        out.changes.push_back(conversation_inserted(c));
        return;
    }
    case mutation_name::update_conversation:
    {
        storage::conversations::patch p{r.title,   r.pinned, r.archived,
                                        r.starred, r.model,  r.system_prompt};
        auto c = storage::conversations::update(db, user, *r.conversation_id, p, now);
        if (!c)
            throw not_found("conversation: " + *r.conversation_id);
        out.data = to_json(*c);
        out.changes.push_back(events::changed("conversation", "update", c->id, c->id,
                                              json::serialize(patched_fields(r, *c))));
        return;
    }
    case mutation_name::delete_conversation:
    {
        auto const& id = *r.conversation_id;
        if (!storage::conversations::get(db, user, id))
            throw not_found("conversation: " + id);
        refuse_if_running(db, hub, id);
        storage::conversations::remove(db, user, id);
        out.data = json::object{{"deleted", true}, {"conversationId", id}};
        out.changes.push_back(events::changed("conversation", "delete", id, id, std::nullopt));
        return;
    }
    case mutation_name::delete_message:
    {
        auto m = storage::messages::get(db, user, *r.message_id);
        if (!m)
            throw not_found("message: " + *r.message_id);
        refuse_if_running(db, hub, m->conversation_id);
        storage::messages::remove(db, user, m->id);
        out.data = json::object{
            {"deleted", true}, {"messageId", m->id}, {"conversationId", m->conversation_id}};
        out.changes.push_back(
            events::changed("message", "delete", m->id, m->conversation_id, std::nullopt));
        if (auto c = storage::conversations::get(db, user, m->conversation_id))
            out.changes.push_back(conversation_counters_changed(*c));
        return;
    }
    case mutation_name::branch:
    {
        auto c = storage::conversations::branch(db, user, *r.message_id, core::new_id(), now);
        out.data = to_json(c);
        out.changes.push_back(conversation_inserted(c));
        return;
    }
    case mutation_name::regenerate:
    case mutation_name::retry:
        break; // handled by the hub
    }
    throw storage::storage_error(storage::errc::invalid_argument, "unknown mutation");
}

} // namespace

void run_mutation(mutation_context const& ctx, std::string const& user_id, mutate_request req,
                  std::weak_ptr<subscriber> requester)
{
    if (req.name == mutation_name::regenerate || req.name == mutation_name::retry)
        return ctx.hub.regenerate(user_id, std::move(req), std::move(requester));

    auto out = std::make_shared<outcome>();
    out->user_id = user_id;
    auto r = std::make_shared<mutate_request const>(std::move(req));
    ctx.writer.submit(
        [out, r, &hub = ctx.hub](storage::database& db)
        {
            try
            {
                apply(db, hub, *r, *out);
            }
            catch (storage::storage_error const& e)
            {
                out->why = e.what();
                throw;
            }
        },
        [out, r, requester = std::move(requester), &changes = ctx.changes](std::error_code ec)
        {
            if (ec)
                return deliver_to(requester,
                                  events::error(r->id, std::nullopt, to_wire_error(ec),
                                                out->why.empty() ? ec.message() : out->why));
            deliver_to(requester, events::result(r->id, json::serialize(out->data)));
            for (auto const& f : out->changes)
                changes.publish(out->user_id, f);
        });
}

} // namespace chatstream::streaming::detail
