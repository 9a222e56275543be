// Auto-title: after the first complete answer of a "New Chat", one short
// provider request names the conversation. Best effort.
#include "detail/live_generation.hpp"

namespace chatstream::streaming
{

namespace
{

constexpr std::string_view title_prompt =
    "Write a short title (at most six words) for a conversation that starts with the "
    "user's message below. Reply with the title only: no quotes, no final period.";

/// Collects a title suggestion. Calls @p done exactly once (nullopt on error).
class title_sink : public provider_sink
{
public:
    explicit title_sink(std::function<void(std::optional<std::string>)> done)
        : done_(std::move(done))
    {
    }
    void on_text(std::string_view text) override
    {
        if (text_.size() < 1024)
            text_ += text;
    }
    void on_tool_input_start(std::string_view, std::string_view) override {}
    void on_tool_input_delta(std::string_view, std::string_view) override {}
    void on_tool_call(std::string_view, std::string_view, std::string_view) override {}
    void on_step_finish(std::string_view, step_usage) override { complete(std::move(text_)); }
    void on_error(std::string_view) override { complete(std::nullopt); }
    void complete(std::optional<std::string> title)
    {
        if (auto done = std::exchange(done_, {}))
            done(std::move(title));
    }

private:
    std::function<void(std::optional<std::string>)> done_;
    std::string text_;
};

// One line, no surrounding quotes or final period, at most 80 bytes cut on
// a code point boundary.
std::string clean_title(std::string_view raw)
{
    std::string out;
    bool space = false;
    for (char c : raw)
    {
        if (std::isspace(static_cast<unsigned char>(c)))
            space = !out.empty();
        else
        {
            if (space)
                out += ' ';
            space = false;
            out += c;
        }
    }
    auto strip = [&](std::string_view chars)
    {
        while (!out.empty() && chars.find(out.front()) != std::string_view::npos)
            out.erase(0, 1);
        while (!out.empty() && chars.find(out.back()) != std::string_view::npos)
            out.pop_back();
    };
    strip("\"'`*#");
    while (!out.empty() && out.back() == '.')
        out.pop_back();
    if (out.size() > 80)
        out.resize(core::complete_utf8_prefix(std::string_view(out).substr(0, 80)));
    return out;
}

} // namespace

void generation::suggest_title()
{
    provider_request req;
    req.title = true;
    req.model = id_.model;
    req.messages = {{"system", std::string(title_prompt)}, {"user", id_.title_source}};
    // The timer's handler owns the generation while the request runs; the
    // sink (owned by the stream, which the generation owns) only points back
    // weakly, so an io_context torn down mid-request leaves no cycle behind.
    auto done = [weak = weak_from_this()](std::optional<std::string> raw)
    {
        auto self = weak.lock();
        if (!self)
            return;
        self->title_timer_->cancel();
        self->title_stream_.reset();
        if (!raw)
            return;
        auto title = clean_title(*raw);
        if (title.empty())
            return;
        self->ctx_.writer.submit(
            [id = self->id_.conversation_id, title](storage::database& db)
            {
                if (!storage::conversations::set_generated_title(db, id, title, core::now_ms()))
                    throw storage::storage_error(storage::errc::conflict, "renamed meanwhile");
            },
            [self, title](std::error_code ec)
            {
                if (!ec)
                    self->publish(events::changed(
                        "conversation", "update", self->id_.conversation_id,
                        self->id_.conversation_id,
                        boost::json::serialize(boost::json::object{{"title", title}})));
            });
    };
    auto sink = std::make_shared<title_sink>(std::move(done));
    title_timer_.emplace(strand_, ctx_.title_timeout);
    title_timer_->async_wait(
        [self = shared_from_this(), sink](boost::system::error_code ec)
        {
            if (ec)
                return;
            if (self->title_stream_)
                self->title_stream_->cancel();
            sink->complete(std::nullopt);
        });
    title_stream_ = ctx_.model.start(strand_, std::move(req), sink);
}

} // namespace chatstream::streaming
