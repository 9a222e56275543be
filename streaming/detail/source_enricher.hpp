#pragma once
// Link previews of cited URLs (docs/design.md §9, issue 23): the page
// fetcher's result goes onto the URL's source_metadata row through the
// writer, then to every watcher whose messages cite it as a `changed`
// event. Best effort and off the generation's path: a citation's event
// never waits for it.
#include "chatstream/storage/writer.hpp"
#include "chatstream/streaming/change_feed.hpp"
#include "chatstream/streaming/generation.hpp"
#include "chatstream/streaming/page_fetcher.hpp"

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>

namespace chatstream::streaming::detail
{

class source_enricher final : public source_enrichment,
                              public std::enable_shared_from_this<source_enricher>
{
public:
    source_enricher(boost::asio::io_context& ioc, fetch_options options, storage::writer& writer,
                    change_feed* changes);

    void enrich(std::string url_hash, std::string url) override;

    /// Ends every fetch; later results are not stored or announced.
    void shutdown();

private:
    void store(std::string const& url_hash, fetch_result result);
    void done(std::string const& url_hash);

    page_fetcher fetcher_;
    storage::writer& writer_;
    change_feed* changes_;
    std::mutex mutex_;
    std::unordered_set<std::string> in_flight_; ///< bounded by the fetcher's queue
    bool stopped_ = false;
};

} // namespace chatstream::streaming::detail
