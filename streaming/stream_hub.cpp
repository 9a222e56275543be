// The hub: finds, resumes and stops generations, and flushes every running
// generation's new text in one writer job per tick.
#include "detail/live_generation.hpp"

namespace chatstream::streaming
{

void stream_hub::state::mark_dirty(std::shared_ptr<generation> const& g)
{
    std::lock_guard lock(flush_mutex);
    dirty.push_back(g);
    arm_flush_locked();
}

void stream_hub::state::arm_flush_locked()
{
    if (flush_armed || flush_in_flight || dirty.empty())
        return;
    flush_armed = true;
    if (!flush_timer)
        flush_timer.emplace(net::make_strand(ctx.ioc));
    flush_timer->expires_after(ctx.flush_interval);
    flush_timer->async_wait(
        [weak = weak_from_this()](boost::system::error_code ec)
        {
            if (ec)
                return;
            if (auto st = weak.lock())
                st->flush_tick();
        });
}

void stream_hub::state::flush_tick()
{
    std::vector<std::shared_ptr<generation>> gens;
    {
        std::lock_guard lock(flush_mutex);
        flush_armed = false;
        flush_in_flight = true;
        gens.reserve(dirty.size());
        for (auto const& w : dirty)
            if (auto g = w.lock())
                gens.push_back(std::move(g));
        dirty.clear();
    }
    auto batch = std::make_shared<std::vector<flush_item>>();
    for (auto const& g : gens)
    {
        g->clear_dirty(); // text appended after the copy below marks it again
        if (auto item = g->take_flush())
            batch->push_back(std::move(*item));
    }
    if (batch->empty())
    {
        std::lock_guard lock(flush_mutex);
        flush_in_flight = false;
        return arm_flush_locked();
    }
    auto const submitted = clock::now();
    ctx.writer.submit(
        [batch](storage::database& db)
        {
            auto const now = core::now_ms();
            for (auto const& i : *batch)
            {
                if (!i.reasoning.empty())
                    storage::messages::append_partial_reasoning(db, i.message_id,
                                                                i.reasoning_byte_start, i.reasoning,
                                                                i.thinking_started_at, now);
                if (!i.text.empty())
                    storage::messages::append_partial(db, i.message_id, i.byte_start, i.text,
                                                      i.first_token_at, now);
                storage::nodes::notify(db, storage::nodes::progress_channel, i.message_id);
            }
        },
        [weak = weak_from_this(), batch, submitted](std::error_code ec)
        {
            auto st = weak.lock();
            if (!st)
                return;
            auto const us =
                std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - submitted);
            if (ec)
                spdlog::warn("partial flush of {} generations failed: {}", batch->size(),
                             ec.message());
            for (auto const& i : *batch)
            {
                if (!ec)
                    st->ctx.metrics.record_flush(static_cast<std::uint64_t>(us.count()));
                i.gen->flush_done(i, !ec);
            }
            std::lock_guard lock(st->flush_mutex);
            st->flush_in_flight = false;
            st->arm_flush_locked();
        });
}

//------------------------------------------------------------------------------

stream_hub::stream_hub(hub_context const& ctx) : state_(std::make_shared<state>(ctx)) {}

stream_hub::~stream_hub() = default;

std::size_t stream_hub::active() const
{
    std::lock_guard lock(state_->mutex);
    return state_->by_conversation.size();
}

std::optional<std::string> stream_hub::running_message(std::string const& user_id,
                                                       std::string const& conversation_id) const
{
    std::lock_guard lock(state_->mutex);
    auto c = state_->by_conversation.find(conversation_id);
    if (c == state_->by_conversation.end() || c->second.empty())
        return std::nullopt; // idle, or still being created (no message yet)
    auto m = state_->by_message.find(c->second);
    if (m == state_->by_message.end() || m->second->user_id() != user_id)
        return std::nullopt;
    return c->second;
}

bool stream_hub::running_in(std::string const& conversation_id) const
{
    std::lock_guard lock(state_->mutex);
    return state_->by_conversation.contains(conversation_id);
}

void stream_hub::subscribe(std::string const& user_id, subscribe_request req,
                           std::weak_ptr<subscriber> s)
{
    if (auto gen = state_->find(req.message_id))
        return gen->subscribe(user_id, std::move(s), std::move(req));
    // It may be generating on another node: follow it through the database.
    if (state_->ctx.cluster)
        return state_->ctx.cluster->follow(user_id, std::move(req), std::move(s));

    // Not running here: replay from the database. A generation leaves the
    // map only after its terminal state is committed, so this read sees it.
    subscribe_stored(state_->ctx, user_id, std::move(req), std::move(s));
}

void stream_hub::cancel(std::string const& user_id, cancel_request req, std::weak_ptr<subscriber> s)
{
    if (auto gen = state_->find(req.message_id))
        return gen->cancel(user_id, std::move(s), std::move(req.id));
    if (state_->ctx.cluster)
        return state_->ctx.cluster->cancel(user_id, std::move(req), std::move(s));
    auto id = req.id;
    with_stored_message(
        state_->ctx.reads, user_id, req.message_id, req.id, std::move(s),
        [id](storage::database&, subscriber& sub, storage::message_row const& m)
        {
            sub.deliver(events::error(id, m.id, wire_error::conflict,
                                      "message is not generating (status " + m.status + ")"));
        });
}

void stream_hub::stop_here(std::string const& message_id)
{
    if (auto gen = state_->find(message_id))
        gen->stop_requested();
}

void stream_hub::shutdown(std::function<void()> done)
{
    std::vector<std::shared_ptr<generation>> running;
    std::function<void()> drained;
    {
        std::lock_guard lock(state_->mutex);
        state_->stopping = true;
        state_->on_drained = std::move(done);
        for (auto const& [id, gen] : state_->by_message)
            running.push_back(gen);
        drained = state_->take_drained_if_idle();
    }
    for (auto const& gen : running)
        gen->stop();
    if (drained)
        drained();
}

} // namespace chatstream::streaming
