// The accept path of generate, regenerate and retry: the rate limit, then
// one writer job that reserves the conversation, checks quotas, inserts
// the pending answer and reads the history; then the generation starts.
#include "detail/live_generation.hpp"

namespace chatstream::streaming
{

namespace
{

/// A refusal decided inside an accept job (conflict, quota, not found): it
/// rolls the job back and becomes the requester's `error` event.
struct refusal
{
    wire_error code;
    std::string message;
};

/// What an accept job decides, read by its completion.
struct launch_plan
{
    generation::identity id;
    std::vector<chat_message> history;
    std::optional<frame> reply; ///< ack / result, the requester's first frame
    std::vector<frame> changes; ///< `changed` events, published once committed
    std::optional<refusal> refused;
    bool reserved = false; ///< holds the conversation's slot
};

// The counters after a message was added or removed, read in the same job.
frame conversation_counters(storage::database& db, std::string const& user_id,
                            std::string const& conversation_id)
{
    auto c = storage::conversations::get(db, user_id, conversation_id);
    if (!c)
        throw storage::storage_error(storage::errc::not_found, "no such conversation");
    return detail::conversation_counters_changed(*c);
}

// The new assistant message every accept job inserts, plus its accounting.
storage::message_row insert_pending_answer(storage::database& db, generation::identity const& id,
                                           std::int64_t now)
{
    storage::message_row m;
    m.id = id.message_id;
    m.conversation_id = id.conversation_id;
    m.user_id = id.user_id;
    m.role = "assistant";
    m.status = storage::status::pending;
    m.model = id.model;
    m.created_at = m.updated_at = now;
    storage::messages::insert(db, m);
    storage::usage::add_message(db, id.user_id, id.day, id.model.value_or(""));
    return m;
}

// Provider context: the conversation's system prompt, then every visible
// message before the new answer (read inside the accept transaction).
void load_history(storage::database& db, storage::conversation_row const& conv, launch_plan& plan)
{
    if (conv.system_prompt && !conv.system_prompt->empty())
        plan.history.push_back({"system", *conv.system_prompt});
    for (auto& row : storage::messages::history(db, conv.id))
    {
        if (row.id == plan.id.message_id)
            continue;
        if (row.role == "user" && plan.id.title_source.empty())
            plan.id.title_source = row.content;
        if (row.role != "assistant" || !row.content.empty())
            plan.history.push_back(
                {row.role, std::move(row.content), std::move(row.reasoning).value_or("")});
    }
    plan.id.wants_title = conv.title == "New Chat";
}

} // namespace

namespace
{

// The accept path shared by generate, regenerate and retry: rate limit, then
// one writer job that reserves the conversation (one generation at a time),
// checks quotas and writes; its completion starts the generation and
// publishes the changes, or reports the refusal.
template <class Body>
void launch(std::shared_ptr<stream_hub::state> const& st, std::string const& user_id,
            request_id const& rid, std::weak_ptr<subscriber> requester, Body body)
{
    if (st->ctx.rate)
        if (auto wait = st->ctx.rate->acquire(user_id))
            return deliver_to(
                requester, events::error(rid, std::nullopt, wire_error::rate_limited,
                                         "too many generations: at most " +
                                             std::to_string(static_cast<long long>(
                                                 st->ctx.rate->per_minute())) +
                                             " per minute; retry in " +
                                             std::to_string((wait->count() + 999) / 1000) + " s"));
    auto plan = std::make_shared<launch_plan>();
    plan->id.user_id = user_id;
    plan->id.model = st->ctx.default_model;
    auto reserve = [st, plan](storage::database& db, std::string const& conversation_id)
    {
        {
            std::lock_guard lock(st->mutex);
            if (st->stopping)
                throw refusal{wire_error::internal, "server is shutting down"};
            if (!st->by_conversation.emplace(conversation_id, std::string()).second)
                throw refusal{wire_error::conflict,
                              "a generation is already running in conversation " + conversation_id};
            plan->reserved = true;
            plan->id.conversation_id = conversation_id;
        }
        // Another node may run one there: the claims table says so.
        if (st->ctx.cluster && storage::nodes::busy_in_conversation(db, conversation_id))
            throw refusal{wire_error::conflict, "a generation is already running in conversation " +
                                                    conversation_id + " (on another node)"};
    };
    auto check_quota = [st, plan](storage::database& db, std::int64_t now)
    {
        if (auto why = quota_violation(db, plan->id.user_id, now, st->ctx.quota))
            throw refusal{wire_error::quota_exceeded, std::move(*why)};
    };
    st->ctx.writer.submit(
        [st, plan, body = std::move(body), reserve, check_quota](storage::database& db)
        {
            try
            {
                body(db, *plan, reserve, check_quota);
                if (st->ctx.cluster)
                    storage::nodes::claim(db, plan->id.message_id, st->ctx.cluster->node_id(),
                                          core::now_ms());
            }
            catch (refusal& r)
            {
                // Rolls back this job's savepoint; the completion reads the reason.
                plan->refused = std::move(r);
                throw storage::storage_error(storage::errc::conflict, plan->refused->message);
            }
        },
        [st, plan, rid, requester](std::error_code ec)
        {
            if (ec)
            {
                std::function<void()> drained;
                if (plan->reserved)
                    drained = st->release(plan->id.conversation_id, {});
                auto const r = plan->refused
                                   ? *plan->refused
                                   : refusal{to_wire_error(ec),
                                             "could not store the message: " + ec.message()};
                deliver_to(requester, events::error(rid, std::nullopt, r.code, r.message));
                if (drained)
                    drained();
                return;
            }
            // The generation runs on its requester's strand: its tokens reach
            // that socket with no hand-off between threads.
            std::optional<session_strand> home;
            if (auto r = requester.lock())
                home = r->home_strand();
            auto gen = std::make_shared<generation>(st, plan->id, std::move(plan->history),
                                                    std::move(home));
            bool stopping = false;
            {
                std::lock_guard lock(st->mutex);
                st->by_message[plan->id.message_id] = gen;
                st->by_conversation[plan->id.conversation_id] = plan->id.message_id;
                stopping = st->stopping;
            }
            st->ctx.metrics.active_generations.fetch_add(1, std::memory_order_relaxed);
            st->ctx.metrics.generations_total.fetch_add(1, std::memory_order_relaxed);
            if (st->ctx.changes)
                for (auto const& f : plan->changes)
                    st->ctx.changes->publish(plan->id.user_id, f);
            gen->start(requester, std::move(*plan->reply));
            if (stopping)
                gen->stop();
        });
}

/// The row of one `generate` attachment (issue 20, finding 9): type, MIME
/// type, size and image dimensions are what was stored, not what the client
/// claims; the client's name is sanitised (else the stored name); its other
/// metadata (duration, prompt, model, ...) is kept.
storage::attachment_row attachment_of(attachment_input const& claimed,
                                      storage::files::attachable_file const& stored,
                                      storage::message_row const& message, std::int64_t position)
{
    storage::attachment_row row;
    row.message_id = message.id;
    row.conversation_id = message.conversation_id;
    row.user_id = message.user_id;
    row.position = position;
    row.storage_id = claimed.storage_id;
    row.mime_type = stored.mime_type;
    row.type = stored.type ? *stored.type : core::attachment_type(stored.mime_type);
    row.size = stored.size;
    row.name = core::sanitize_file_name(claimed.name, stored.name);
    if (claimed.metadata || stored.metadata)
        row.metadata = core::merge_json_objects(claimed.metadata.value_or(""),
                                                stored.metadata.value_or(""), {"width", "height"});
    row.created_at = message.created_at;
    return row;
}

} // namespace

void stream_hub::generate(std::string const& user_id, generate_request req,
                          std::weak_ptr<subscriber> requester)
{
    auto r = std::make_shared<generate_request>(std::move(req));
    auto body =
        [r](storage::database& db, launch_plan& plan, auto const& reserve, auto const& check_quota)
    {
        auto const now = core::now_ms();
        bool const new_conversation = !r->conversation_id;
        // Ownership before the reservation: another user's conversation id
        // answers not_found, never `conflict` (which would tell them it
        // exists and is busy), and never holds the owner's conversation.
        std::optional<storage::conversation_row> conv;
        if (!new_conversation &&
            !(conv = storage::conversations::get(db, plan.id.user_id, *r->conversation_id)))
            throw refusal{wire_error::not_found, "no such conversation: " + *r->conversation_id};
        reserve(db, new_conversation ? core::new_id() : *r->conversation_id);
        auto& id = plan.id;
        // Only files the caller uploaded or already attached (issue 11);
        // checked in this job so the garbage collector cannot interleave.
        std::vector<storage::files::attachable_file> stored;
        stored.reserve(r->attachments.size());
        for (std::size_t i = 0; i < r->attachments.size(); ++i)
        {
            auto f = storage::files::find_attachable(db, id.user_id, r->attachments[i].storage_id);
            if (!f)
                throw refusal{wire_error::not_found,
                              "attachments[" + std::to_string(i) +
                                  "]: no such file: " + r->attachments[i].storage_id};
            stored.push_back(std::move(*f));
        }
        if (r->model)
            id.model = r->model;
        id.day = core::utc_day(now);
        if (new_conversation)
        {
            storage::conversation_row c;
            c.id = id.conversation_id;
            c.user_id = id.user_id;
            c.model = id.model;
            c.created_at = c.updated_at = now;
            storage::conversations::insert(db, c);
            conv = c;
        }
        check_quota(db, now);

        storage::message_row u;
        u.id = core::new_id();
        u.conversation_id = id.conversation_id;
        u.user_id = id.user_id;
        u.role = "user";
        u.content = r->content;
        u.status = storage::status::complete;
        u.created_at = u.updated_at = now;
        storage::messages::insert(db, u);
        for (std::size_t i = 0; i < r->attachments.size(); ++i)
            storage::attachments::insert(
                db, attachment_of(r->attachments[i], stored[i], u, static_cast<std::int64_t>(i)));
        id.message_id = core::new_id(); // sorts after the user message
        auto const answer = insert_pending_answer(db, id, now);
        load_history(db, *conv, plan);

        if (new_conversation)
            plan.changes.push_back(detail::conversation_inserted(*conv));
        plan.changes.push_back(detail::message_inserted(u));
        plan.changes.push_back(detail::message_inserted(answer));
        plan.changes.push_back(conversation_counters(db, id.user_id, id.conversation_id));
        plan.reply = events::ack(r->id, id.conversation_id, u.id, id.message_id);
    };
    launch(state_, user_id, r->id, std::move(requester), std::move(body));
}

void stream_hub::regenerate(std::string const& user_id, mutate_request req,
                            std::weak_ptr<subscriber> requester)
{
    auto r = std::make_shared<mutate_request>(std::move(req));
    auto body =
        [r](storage::database& db, launch_plan& plan, auto const& reserve, auto const& check_quota)
    {
        auto const now = core::now_ms();
        bool const retry = r->name == mutation_name::retry;
        auto old = storage::messages::get(db, plan.id.user_id, *r->message_id);
        if (!old)
            throw refusal{wire_error::not_found, "no such message: " + *r->message_id};
        if (old->role != "assistant")
            throw refusal{wire_error::bad_request, std::string(retry ? "retry" : "regenerate") +
                                                       " needs an assistant message"};
        reserve(db, old->conversation_id);
        if (retry && old->status != storage::status::error &&
            old->status != storage::status::stopped && old->status != storage::status::interrupted)
            throw refusal{wire_error::conflict,
                          "retry needs an answer that ended with error, stopped or interrupted "
                          "(this one is " +
                              old->status + "); use regenerate"};
        auto conv = storage::conversations::get(db, plan.id.user_id, old->conversation_id);
        if (!conv)
            throw refusal{wire_error::not_found, "no such conversation"};
        check_quota(db, now);

        auto& id = plan.id;
        if (old->model)
            id.model = old->model;
        id.day = core::utc_day(now);
        auto const removed = storage::messages::remove_from(db, *old, now);
        id.message_id = core::new_id();
        auto const answer = insert_pending_answer(db, id, now);
        load_history(db, *conv, plan);

        boost::json::array removed_ids;
        for (auto const& m : removed)
        {
            removed_ids.emplace_back(m);
            plan.changes.push_back(
                events::changed("message", "delete", m, id.conversation_id, std::nullopt));
        }
        plan.changes.push_back(detail::message_inserted(answer));
        plan.changes.push_back(conversation_counters(db, id.user_id, id.conversation_id));
        plan.reply = events::result(r->id, boost::json::serialize(boost::json::object{
                                               {"conversationId", id.conversation_id},
                                               {"messageId", id.message_id},
                                               {"replacedMessageId", old->id},
                                               {"removedMessageIds", std::move(removed_ids)}}));
    };
    launch(state_, user_id, r->id, std::move(requester), std::move(body));
}

} // namespace chatstream::streaming
