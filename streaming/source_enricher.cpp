#include "detail/source_enricher.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/sources.hpp"

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

namespace chatstream::streaming::detail
{

namespace json = boost::json;

source_enricher::source_enricher(boost::asio::io_context& ioc, fetch_options options,
                                 storage::writer& writer, change_feed* changes)
    : fetcher_(ioc, std::move(options)), writer_(writer), changes_(changes)
{
}

void source_enricher::enrich(std::string url_hash, std::string url)
{
    {
        std::lock_guard lock(mutex_);
        if (stopped_ || !in_flight_.insert(url_hash).second)
            return; // one fetch per URL at a time
    }
    fetcher_.fetch(std::move(url), [self = shared_from_this(), url_hash](fetch_result r)
                   { self->store(url_hash, std::move(r)); });
}

void source_enricher::shutdown()
{
    {
        std::lock_guard lock(mutex_);
        stopped_ = true;
    }
    fetcher_.shutdown();
}

void source_enricher::done(std::string const& url_hash)
{
    std::lock_guard lock(mutex_);
    in_flight_.erase(url_hash);
}

void source_enricher::store(std::string const& url_hash, fetch_result r)
{
    {
        std::lock_guard lock(mutex_);
        // A refused queue slot or a shutdown is not the page's fault: leave
        // the row unfetched, so a later citation tries again.
        if (stopped_ || (r.error && (*r.error == "enrichment queue full" ||
                                     *r.error == "enrichment shut down")))
        {
            in_flight_.erase(url_hash);
            return;
        }
    }
    storage::source_metadata_row m;
    m.url_hash = url_hash;
    m.og_title = std::move(r.meta.title);
    m.og_description = std::move(r.meta.description);
    m.og_image = std::move(r.meta.image);
    m.favicon = std::move(r.meta.favicon);
    m.fetched_at = core::now_ms();
    m.error = std::move(r.error);
    if (m.error)
        spdlog::debug("link preview {}: {}", url_hash, *m.error);
    auto citers = std::make_shared<std::vector<storage::sources::citer>>();
    writer_.submit(
        [m, citers](storage::database& db) { *citers = storage::sources::set_metadata(db, m); },
        [self = shared_from_this(), m, citers](std::error_code ec)
        {
            self->done(m.url_hash);
            {
                std::lock_guard lock(self->mutex_);
                if (ec || self->stopped_ || !self->changes_)
                    return;
            }
            auto const data = json::serialize(json::object{
                {"ogTitle", m.og_title ? json::value(*m.og_title) : nullptr},
                {"ogDescription", m.og_description ? json::value(*m.og_description) : nullptr},
                {"ogImage", m.og_image ? json::value(*m.og_image) : nullptr},
                {"favicon", m.favicon ? json::value(*m.favicon) : nullptr},
                {"fetchedAt", *m.fetched_at},
                {"error", m.error ? json::value(*m.error) : nullptr}});
            for (auto const& c : *citers)
                self->changes_->publish(c.user_id,
                                        events::changed("sourceMetadata", "update", m.url_hash,
                                                        c.conversation_id, data));
        });
}

} // namespace chatstream::streaming::detail
