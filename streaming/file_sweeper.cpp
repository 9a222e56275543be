// Garbage collection of uploaded files (docs/files.md): a steady_timer on
// the io_context submits a writer job every --file-sweep-interval seconds.
// The job decides and deletes inside the writer's transaction, so it is
// ordered against every upload and every generate that attaches a file, and
// it does not care how attachment rows went away (message or conversation
// delete, cascade, a manual DELETE).
#include "detail/file_routes.hpp"

#include "chatstream/core/clock.hpp"
#include "chatstream/storage/files.hpp"
#include "chatstream/storage/writer.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <spdlog/spdlog.h>

namespace chatstream::streaming::detail
{

namespace net = boost::asio;

namespace
{

constexpr std::size_t sweep_batch = 256;

struct sweeper : std::enable_shared_from_this<sweeper>
{
    sweeper(net::io_context& ioc, std::shared_ptr<server_context> c)
        : timer(net::make_strand(ioc)), ctx(std::move(c))
    {
    }

    void arm(std::chrono::milliseconds after)
    {
        timer.expires_after(after);
        timer.async_wait(
            [self = shared_from_this()](boost::system::error_code ec)
            {
                if (ec)
                    return;
                self->run();
            });
    }

    void run()
    {
        sweep_files(*ctx,
                    [self = shared_from_this()](std::size_t n)
                    {
                        // A full batch means there may be more: go again now.
                        auto const next =
                            n == sweep_batch
                                ? std::chrono::milliseconds(0)
                                : std::chrono::milliseconds(
                                      1000ll * self->ctx->options.file_sweep_interval_s);
                        net::post(self->timer.get_executor(), [self, next] { self->arm(next); });
                    });
    }

    net::steady_timer timer;
    std::shared_ptr<server_context> ctx;
};

} // namespace

void sweep_files(server_context& ctx, std::function<void(std::size_t)> done)
{
    auto removed = std::make_shared<std::vector<std::string>>();
    auto const cutoff = core::now_ms() - 1000 * ctx.options.unattached_upload_ttl_s;
    auto* blobs = &ctx.blobs;
    ctx.writer.submit(
        [removed, cutoff, blobs](storage::database& db)
        {
            *removed = storage::files::collect_garbage(db, cutoff, sweep_batch);
            // Unlinked in the job, not after the commit: an upload of the
            // same bytes later in this batch must find the blob gone and
            // put its own copy in place. If the commit fails, the rows come
            // back without their blob; they were unreferenced and expired,
            // and the next sweep removes them.
            for (auto const& id : *removed)
                blobs->remove(id);
        },
        [removed, done = std::move(done)](std::error_code ec)
        {
            if (ec)
                spdlog::error("files: sweep failed: {}", ec.message());
            else if (!removed->empty())
                spdlog::info("files: collected {} unreferenced file(s)", removed->size());
            if (done)
                done(ec ? 0 : removed->size());
        });
}

void start_file_sweeper(net::io_context& ioc, std::shared_ptr<server_context> ctx)
{
    auto s = std::make_shared<sweeper>(ioc, std::move(ctx));
    // First sweep right away: collects what expired while the server was down.
    net::post(s->timer.get_executor(), [s] { s->arm(std::chrono::milliseconds(0)); });
}

} // namespace chatstream::streaming::detail
