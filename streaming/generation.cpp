// One running generation: the provider's callbacks on its strand, the tool
// loop, the live log its readers follow, and the commits that end it.
#include "detail/live_generation.hpp"

namespace chatstream::streaming
{

void end_claim(storage::database& db, std::string const& message_id)
{
    storage::nodes::release(db, message_id);
    storage::nodes::notify(db, storage::nodes::progress_channel, message_id);
}

void generation::start(std::weak_ptr<subscriber> requester, frame ack)
{
    net::dispatch(strand_,
                  [self = shared_from_this(), requester = std::move(requester),
                   ack = std::move(ack)]() mutable
                  {
                      deliver_to(requester, std::move(ack));
                      self->follow(requester, stream_log::cursor{});
                      auto const now = core::now_ms();
                      self->ctx_.writer.submit(
                          [id = self->id_.message_id, now](storage::database& db)
                          { storage::messages::mark_generating(db, id, now); },
                          [self, now](std::error_code ec)
                          {
                              if (!ec)
                                  self->publish_update(
                                      boost::json::object{{"status", storage::status::generating},
                                                          {"generationStartedAt", now}});
                          });
                      self->start_step();
                  });
}

void generation::subscribe(std::string const& user_id, std::weak_ptr<subscriber> s,
                           subscribe_request req)
{
    net::dispatch(strand_, [self = shared_from_this(), user_id, s = std::move(s),
                            req = std::move(req)] { self->do_subscribe(user_id, s, req); });
}

void generation::cancel(std::string const& user_id, std::weak_ptr<subscriber> s, request_id id)
{
    net::dispatch(
        strand_,
        [self = shared_from_this(), user_id, s = std::move(s), id = std::move(id)]
        {
            if (user_id != self->id_.user_id)
                return deliver_to(s, events::error(id, self->id_.message_id, wire_error::not_found,
                                                   "no such message"));
            switch (self->state_)
            {
            case state::running:
                self->add_watcher(s);
                return self->finish(storage::status::stopped, "abort", std::nullopt);
            case state::finishing:
                return self->add_watcher(s); // hears the finish being committed
            case state::finished:
                return deliver_to(s, events::error(id, self->id_.message_id, wire_error::conflict,
                                                   "message is not generating (status " +
                                                       self->final_status_ + ")"));
            }
        });
}

void generation::stop_requested()
{
    net::dispatch(strand_,
                  [self = shared_from_this()]
                  {
                      if (self->state_ == state::running)
                          self->finish(storage::status::stopped, "abort", std::nullopt);
                  });
}

void generation::stop()
{
    net::dispatch(strand_,
                  [self = shared_from_this()]
                  {
                      if (self->state_ == state::running)
                          self->finish(storage::status::stopped, "shutdown",
                                       std::string("server shutting down"));
                  });
}

void generation::on_text(std::string_view text)
{
    if (state_ != state::running || text.empty())
        return;
    end_reasoning();
    token_arrived();
    if (!first_token_at_)
    {
        first_token_at_ = core::now_ms();
        first_token_ms_.store(*first_token_at_, std::memory_order_relaxed);
    }
    log_->append_text(text);
    ++step_chunks_;
    mark_dirty();
}

void generation::on_reasoning(std::string_view text)
{
    if (state_ != state::running || text.empty())
        return;
    token_arrived();
    if (!reasoning_open_)
    {
        reasoning_open_ = true;
        if (!thinking_started_at_)
        {
            thinking_started_at_ = core::now_ms();
            thinking_started_ms_.store(*thinking_started_at_, std::memory_order_relaxed);
        }
        log_->append_reasoning_event(events::reasoning_start(id_.message_id));
    }
    log_->append_reasoning(text);
    ++step_reasoning_chunks_;
    mark_dirty();
}

void generation::on_source(cited_source const& source)
{
    if (state_ != state::running)
        return;
    record_source(source, "upstream");
}

namespace
{

// A citation's texts come from the upstream or a tool: bounded, so one
// message's sources cost at most max_sources × these.
constexpr std::size_t max_sources = 256;
constexpr std::size_t max_source_url = 4096;
constexpr std::size_t max_source_text = 2048;

std::optional<std::string> capped(std::optional<std::string> const& text)
{
    if (!text || text->empty())
        return std::nullopt;
    if (text->size() <= max_source_text)
        return text;
    return text->substr(
        0, core::complete_utf8_prefix(std::string_view(*text).substr(0, max_source_text)));
}

} // namespace

void generation::record_source(cited_source const& source, char const* provider)
{
    if (source.url.size() > max_source_url || source_hashes_.size() >= max_sources)
        return;
    auto normalized = storage::normalize_source_url(source.url);
    if (!normalized)
    {
        spdlog::debug("message {}: not a source URL: {}", id_.message_id, source.url);
        return;
    }
    auto hash = storage::source_url_hash(*normalized);
    if (std::ranges::find(source_hashes_, hash) != source_hashes_.end())
        return; // cited before: the first citation (and its title) stands
    source_hashes_.push_back(hash);

    storage::source_row row;
    row.id = core::new_id();
    row.message_id = id_.message_id;
    row.conversation_id = id_.conversation_id;
    row.user_id = id_.user_id;
    row.position = static_cast<std::int64_t>(source_hashes_.size());
    row.url_hash = std::move(hash);
    row.url = source.url;
    row.title = capped(source.title);
    row.snippet = capped(source.snippet);
    row.published_date = capped(source.published_date);
    row.provider = provider;
    row.is_partial = true;
    row.created_at = core::now_ms();
    auto needs = std::make_shared<bool>(false);
    ctx_.writer.submit(
        [row, normalized = *normalized, needs](storage::database& db)
        {
            storage::sources::insert(db, row, normalized);
            *needs = storage::sources::needs_enrichment(db, row.url_hash);
        },
        [self = shared_from_this(), row, normalized = std::move(*normalized),
         needs](std::error_code ec) mutable
        {
            net::post(self->strand_,
                      [self, row = std::move(row), normalized = std::move(normalized), needs, ec]
                      { self->on_source_committed(row, normalized, *needs, ec); });
        });
}

void generation::on_source_committed(storage::source_row const& row, std::string const& normalized,
                                     bool needs_enrichment, std::error_code ec)
{
    if (ec)
    {
        // Not stored, so not announced: the answer goes on without it.
        spdlog::warn("message {}: could not store source {}: {}", id_.message_id, row.position,
                     ec.message());
        return;
    }
    // The writer is FIFO: a citation made before the end is committed
    // before the final row, so its event still precedes `finish`.
    if (state_ != state::finished)
        broadcast(events::source(id_.message_id, row.position, row.url, row.title, row.snippet));
    if (needs_enrichment && ctx_.enrichment)
        ctx_.enrichment->enrich(row.url_hash, normalized);
}

void generation::cite_tool_results(std::string_view result_json)
{
    boost::system::error_code ec;
    auto const v = boost::json::parse(result_json, ec);
    if (ec || !v.is_object())
        return;
    auto const* results = v.as_object().if_contains("results");
    if (!results || !results->is_array())
        return;
    auto const text = [](boost::json::object const& o,
                         char const* key) -> std::optional<std::string>
    {
        auto const* f = o.if_contains(key);
        if (!f || !f->is_string())
            return std::nullopt;
        return std::string(f->as_string());
    };
    for (auto const& r : results->as_array())
    {
        if (!r.is_object())
            continue;
        auto const& o = r.as_object();
        auto url = text(o, "url");
        if (!url)
            continue;
        record_source(
            {std::move(*url), text(o, "title"), text(o, "snippet"), text(o, "publishedDate")},
            "tool");
    }
}

void generation::on_tool_input_start(std::string_view id, std::string_view name)
{
    if (state_ != state::running)
        return;
    end_reasoning();
    auto const at = log_->u16_length_unlocked();
    tools_.push_back({std::string(id), std::string(name), "{}", std::nullopt, at});
    broadcast(events::tool_input_start(id_.message_id, id, name, at));
}

void generation::on_tool_input_delta(std::string_view id, std::string_view delta)
{
    if (state_ != state::running)
        return;
    broadcast(events::tool_input_delta(id_.message_id, id, delta));
}

void generation::on_tool_call(std::string_view id, std::string_view name,
                              std::string_view args_json)
{
    if (state_ != state::running)
        return;
    end_reasoning();
    auto* t = find_tool(id);
    if (!t)
    {
        tools_.push_back(
            {std::string(id), std::string(name), "{}", std::nullopt, log_->u16_length_unlocked()});
        t = &tools_.back();
    }
    t->args_json = std::string(args_json);
    broadcast(events::tool_input_available(id_.message_id, t->id, t->name, t->args_json,
                                           t->text_position));

    // The row (is_partial=1, args, text_position) is committed first; the
    // result goes into the same row; tool-output-* is sent only once that
    // second write is durable. The writer is FIFO, so one completion covers both.
    storage::tool_call_row row;
    row.message_id = id_.message_id;
    row.conversation_id = id_.conversation_id;
    row.user_id = id_.user_id;
    row.tool_call_id = t->id;
    row.tool_name = t->name;
    row.args = t->args_json;
    row.text_position = static_cast<std::int64_t>(t->text_position);
    row.is_partial = true;
    row.timestamp = core::now_ms();
    ctx_.writer.submit([row](storage::database& db) { storage::tool_calls::upsert(db, row); });

    // Tools may do I/O (e.g. `lookup` on the read pool): run_async posts
    // the result back to this strand, never blocking it.
    ++pending_tools_;
    ctx_.tools.run_async(
        t->name, t->args_json, tool_context{id_.user_id, id_.conversation_id, id_.message_id},
        strand_,
        [self = shared_from_this(), row = std::move(row)](tool_result result) mutable
        { self->store_tool_result(std::move(row), std::move(result.json)); });
}

void generation::on_step_finish(std::string_view finish_reason, step_usage usage)
{
    stream_.reset();
    if (state_ != state::running)
        return;
    end_reasoning();
    step_ended();
    // Without usage from upstream, each text or reasoning chunk counts as a token.
    output_tokens_ +=
        usage.output_tokens ? usage.output_tokens : step_chunks_ + step_reasoning_chunks_;
    reasoning_tokens_ += usage.output_tokens ? usage.reasoning_tokens : step_reasoning_chunks_;
    step_chunks_ = 0;
    step_reasoning_chunks_ = 0;
    if (step_ == 0)
        input_tokens_ = usage.input_tokens;
    // Every step is billed for its own input (the history is re-sent),
    // so cost is summed per step rather than computed from the totals.
    if (id_.model)
        if (auto c = cost_usd(*id_.model, usage))
            cost_ = cost_.value_or(0) + *c;
    step_reason_ = std::string(finish_reason);
    step_done_ = true;
    maybe_next_step();
}

void generation::on_error(std::string_view message)
{
    stream_.reset();
    if (state_ != state::running)
        return;
    finish(storage::status::error, "error", std::string(message));
}

void generation::mark_dirty()
{
    if (!dirty_.exchange(true, std::memory_order_acq_rel))
        hub_->mark_dirty(shared_from_this());
}

void generation::end_reasoning()
{
    if (!reasoning_open_)
        return;
    reasoning_open_ = false;
    if (!thinking_completed_at_)
        thinking_completed_at_ = core::now_ms();
    log_->append_reasoning_event(events::reasoning_end(id_.message_id));
}

void generation::token_arrived()
{
    if (!step_first_token_)
        step_first_token_ = clock::now();
}

void generation::step_ended()
{
    if (step_first_token_)
        streaming_seconds_ +=
            std::chrono::duration<double>(clock::now() - *step_first_token_).count();
    step_first_token_.reset();
}

generation::tool_state* generation::find_tool(std::string_view id)
{
    for (auto& t : tools_)
        if (t.id == id)
            return &t;
    return nullptr;
}

void generation::start_step()
{
    provider_request req;
    req.messages = history_;
    req.model = id_.model;
    req.step = step_;
    req.output_tokens_so_far = output_tokens_;
    for (auto const& t : tools_)
        if (t.result_json)
            req.tool_results.push_back({t.id, t.name, t.args_json, *t.result_json});
    step_done_ = false;
    stream_ = ctx_.model.start(strand_, std::move(req), shared_from_this());
}

void generation::store_tool_result(storage::tool_call_row row, std::string json)
{
    // Stopped or failed meanwhile: finish has finalized the row already
    // (a late upsert would make it partial again after the terminal state).
    if (state_ != state::running)
    {
        --pending_tools_;
        return;
    }
    row.result = json;
    auto tool_id = row.tool_call_id;
    ctx_.writer.submit(
        [row = std::move(row)](storage::database& db)
        {
            storage::tool_calls::upsert(db, row);
            storage::nodes::notify(db, storage::nodes::progress_channel, row.message_id);
        },
        [self = shared_from_this(), tool_id = std::move(tool_id),
         json = std::move(json)](std::error_code ec) mutable
        {
            net::post(self->strand_,
                      [self, tool_id = std::move(tool_id), json = std::move(json), ec]() mutable
                      { self->on_tool_committed(tool_id, std::move(json), ec); });
        });
}

void generation::on_tool_committed(std::string const& tool_id, std::string json, std::error_code ec)
{
    --pending_tools_;
    if (state_ != state::running)
        return;
    if (ec)
        return finish(storage::status::error, "error",
                      "could not store tool call: " + ec.message());
    if (auto* t = find_tool(tool_id))
    {
        t->result_json = std::move(json);
        broadcast(tool_output(id_.message_id, t->id, *t->result_json));
        cite_tool_results(*t->result_json);
    }
    maybe_next_step();
}

void generation::maybe_next_step()
{
    if (!step_done_ || pending_tools_ > 0 || state_ != state::running)
        return;
    if (step_reason_ == "tool-calls" && step_ + 1 < ctx_.max_steps)
    {
        ++step_;
        return start_step();
    }
    finish(storage::status::complete, step_reason_, std::nullopt);
}

std::optional<flush_item> generation::take_flush()
{
    if (finishing_.load(std::memory_order_acquire))
        return std::nullopt;
    auto text = log_->copy_text(flushed_bytes_);
    auto reasoning = log_->copy_reasoning(flushed_reasoning_bytes_);
    if (text.empty() && reasoning.empty())
        return std::nullopt;
    flush_item item;
    item.gen = shared_from_this();
    item.message_id = id_.message_id;
    item.byte_start = static_cast<std::int64_t>(flushed_bytes_);
    item.text = std::move(text);
    if (!first_flushed_ && !item.text.empty())
        if (auto const t = first_token_ms_.load(std::memory_order_relaxed))
            item.first_token_at = t;
    item.reasoning_byte_start = static_cast<std::int64_t>(flushed_reasoning_bytes_);
    item.reasoning = std::move(reasoning);
    if (!thinking_flushed_ && !item.reasoning.empty())
        if (auto const t = thinking_started_ms_.load(std::memory_order_relaxed))
            item.thinking_started_at = t;
    return item;
}

void generation::flush_done(flush_item const& item, bool committed)
{
    if (!committed)
    {
        // Try again next tick from the same offset (the key makes it idempotent).
        if (!dirty_.exchange(true, std::memory_order_acq_rel))
            hub_->mark_dirty(shared_from_this());
        return;
    }
    flushed_bytes_ = static_cast<std::size_t>(item.byte_start) + item.text.size();
    flushed_reasoning_bytes_ =
        static_cast<std::size_t>(item.reasoning_byte_start) + item.reasoning.size();
    if (item.first_token_at)
        first_flushed_ = true;
    if (item.thinking_started_at)
        thinking_flushed_ = true;
}

void generation::finish(std::string status, std::string reason, std::optional<std::string> error)
{
    state_ = state::finishing;
    finishing_.store(true, std::memory_order_release);
    if (stream_)
    {
        stream_->cancel(); // aborts the upstream now, not at the next token
        stream_.reset();
    }
    end_reasoning();
    step_ended();
    output_tokens_ += step_chunks_ + step_reasoning_chunks_;
    reasoning_tokens_ += step_reasoning_chunks_;
    step_chunks_ = 0;
    step_reasoning_chunks_ = 0;

    storage::messages::completion c;
    c.status = status;
    c.content = std::string(log_->text_unlocked());
    c.error = error;
    c.finish_reason = reason;
    c.input_tokens = input_tokens_;
    c.output_tokens = output_tokens_;
    c.cost = cost_;
    c.first_token_at = first_token_at_;
    c.completed_at = core::now_ms();
    if (output_tokens_ > 0 && streaming_seconds_ > 0)
        c.tokens_per_second = static_cast<double>(output_tokens_) / streaming_seconds_;
    if (thinking_started_at_)
    {
        c.reasoning = std::string(log_->reasoning_unlocked());
        c.reasoning_tokens = reasoning_tokens_;
        c.thinking_started_at = thinking_started_at_;
        c.thinking_completed_at = thinking_completed_at_;
    }

    completion_ = std::move(c); // kept for the retries below
    commit_final(events::finish_info{status, reason, input_tokens_, output_tokens_, error,
                                     reasoning_tokens_},
                 0);
}

void generation::commit_final(events::finish_info info, int busy_retries)
{
    ctx_.writer.submit(
        [id = id_, c = *completion_](storage::database& db)
        {
            // Usage is counted in the transaction that makes the message
            // terminal, so it is never counted twice nor lost.
            if (storage::messages::finish(db, id.message_id, c))
                storage::usage::add_completion(db, id.user_id, id.day, id.model.value_or(""),
                                               c.input_tokens.value_or(0),
                                               c.output_tokens.value_or(0), c.cost.value_or(0));
            end_claim(db, id.message_id);
        },
        [self = shared_from_this(), info = std::move(info),
         busy_retries](std::error_code ec) mutable
        {
            net::post(self->strand_,
                      [self, info = std::move(info), ec, busy_retries]() mutable
                      {
                          if (ec == storage::errc::busy && busy_retries < max_busy_retries)
                          {
                              spdlog::warn("generation {}: final commit: {}, retrying",
                                           self->id_.message_id, ec.message());
                              return self->commit_final(std::move(info), busy_retries + 1);
                          }
                          self->on_finished(std::move(info), ec);
                      });
        });
}

void generation::retry_final_commit(std::string why, int attempt)
{
    if (attempt >= 120 || !completion_)
        return;
    retry_timer_.expires_after(std::chrono::milliseconds(250 << std::min(attempt, 4)));
    retry_timer_.async_wait(
        [self = shared_from_this(), why = std::move(why), attempt](boost::system::error_code ec)
        {
            if (ec)
                return;
            auto c = *self->completion_;
            c.status = storage::status::error;
            c.error = "could not store the end of the generation: " + why;
            c.completed_at = core::now_ms();
            self->ctx_.writer.submit(
                [id = self->id_.message_id, c = std::move(c)](storage::database& db)
                {
                    storage::messages::finish(db, id, c);
                    end_claim(db, id);
                },
                [self, why, attempt](std::error_code ec)
                {
                    if (ec)
                        net::post(self->strand_, [self, why, attempt]
                                  { self->retry_final_commit(why, attempt + 1); });
                });
        });
}

void generation::on_finished(events::finish_info info, std::error_code ec)
{
    state_ = state::finished;
    if (ec)
    {
        spdlog::error("generation {}: final commit failed: {}", id_.message_id, ec.message());
        final_ = events::error({}, id_.message_id, wire_error::internal,
                               "could not store the end of the generation: " + ec.message());
        retry_final_commit(ec.message(), 0);
    }
    else
        final_ = events::finish(id_.message_id, info);
    final_status_ = ec ? std::string(storage::status::error) : info.status;
    if (!ec)
    {
        boost::json::object change{{"status", info.status},
                                   {"finishReason", info.finish_reason},
                                   {"inputTokens", info.input_tokens},
                                   {"outputTokens", info.output_tokens},
                                   {"reasoningTokens", info.reasoning_tokens},
                                   {"cost", cost_ ? boost::json::value(*cost_) : nullptr}};
        if (auto const& tps = completion_->tokens_per_second)
            change["tokensPerSecond"] = *tps;
        if (info.error)
            change["error"] = *info.error;
        publish_update(std::move(change));
    }
    // Free the conversation before anyone hears `finish`: a client that
    // sends its next message right after it must not get `conflict`.
    auto drained = hub_->release(id_.conversation_id, id_.message_id);
    ctx_.metrics.active_generations.fetch_sub(1, std::memory_order_relaxed);
    // Counted before anyone hears `finish`, so a client that reads
    // /metrics after it knows whether a title request follows.
    bool const title =
        !ec && info.status == storage::status::complete && id_.wants_title && ctx_.auto_title;
    if (title)
        ctx_.metrics.titles_requested.fetch_add(1, std::memory_order_relaxed);
    log_->close(*final_); // every follower hears it after the rest of the log
    // The row now holds this very text: readers still behind (a client
    // that stopped reading) fetch the rest from it, so a finished answer
    // is not kept in memory for them (issue 19).
    if (!ec)
        log_->release_text();
    for (auto& w : watchers_)
        deliver_to(w, *final_);
    watchers_.clear();
    followers_.clear();
    pumps_.clear(); // a pump delivered everything when the log closed
    if (drained)
        drained();
    if (title)
        suggest_title();
}

void generation::publish(frame const& f)
{
    if (ctx_.changes)
        ctx_.changes->publish(id_.user_id, f);
}

void generation::publish_update(boost::json::object fields)
{
    publish(events::changed("message", "update", id_.message_id, id_.conversation_id,
                            boost::json::serialize(fields)));
}

void generation::do_subscribe(std::string const& user_id, std::weak_ptr<subscriber> const& s,
                              subscribe_request const& req)
{
    if (user_id != id_.user_id)
        return deliver_to(
            s, events::error(req.id, req.message_id, wire_error::not_found, "no such message"));
    // Finished, and its text is now only in the committed row.
    if (log_->released())
        return subscribe_stored(ctx_, user_id, req, s);
    auto const from = log_->cursor_at(req.from_offset, req.from_reasoning_offset);
    if (!from)
    {
        auto const reasoning_length = core::utf16_length(log_->reasoning_unlocked());
        if (req.from_reasoning_offset > reasoning_length)
            return deliver_to(s, events::error(req.id, req.message_id, wire_error::bad_request,
                                               "fromReasoningOffset " +
                                                   std::to_string(req.from_reasoning_offset) +
                                                   " is past the end of the reasoning (" +
                                                   std::to_string(reasoning_length) + ")"));
        return deliver_to(s, events::error(req.id, req.message_id, wire_error::bad_request,
                                           "fromOffset " + std::to_string(req.from_offset) +
                                               " is past the end of the text (" +
                                               std::to_string(log_->u16_length_unlocked()) + ")"));
    }
    follow(s, *from);
}

void generation::follow(std::weak_ptr<subscriber> const& w, stream_log::cursor from)
{
    auto s = w.lock();
    if (!s)
        return;
    if (!log_->closed())
        followers_.push_back(w);
    if (auto keep = s->follow(log_, from, w))
        if (!log_->closed())
            pumps_.push_back(std::move(keep));
}

void generation::add_watcher(std::weak_ptr<subscriber> const& s)
{
    auto sp = s.lock();
    if (!sp)
        return;
    for (auto const& w : followers_)
        if (w.lock() == sp)
            return;
    watchers_.push_back(s);
}

} // namespace chatstream::streaming
