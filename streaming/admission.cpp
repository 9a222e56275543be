#include "detail/admission.hpp"

#include <spdlog/spdlog.h>

#include <sys/resource.h>

#include <algorithm>
#include <utility>

namespace chatstream::streaming::detail
{

admission_ticket::admission_ticket(admission_ticket&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), user_(std::move(other.user_))
{
}

admission_ticket& admission_ticket::operator=(admission_ticket&& other) noexcept
{
    if (this != &other)
    {
        release();
        owner_ = std::exchange(other.owner_, nullptr);
        user_ = std::move(other.user_);
    }
    return *this;
}

admission_ticket::~admission_ticket()
{
    release();
}

void admission_ticket::release() noexcept
{
    if (auto* owner = std::exchange(owner_, nullptr))
        owner->release(user_);
}

std::variant<admission_ticket, admission_refusal>
connection_admission::admit(std::string const& user)
{
    std::lock_guard lock(mutex_);
    if (total_ >= max_total_)
        return admission_refusal{admission_refusal::scope::server,
                                 "the server is at its connection limit (" +
                                     std::to_string(max_total_) + ", --max-connections)"};
    auto& mine = per_user_[user];
    if (mine >= max_per_user_)
        return admission_refusal{admission_refusal::scope::user,
                                 "this user already has " + std::to_string(mine) +
                                     " open connections (--max-connections-per-user)"};
    ++mine;
    ++total_;
    return admission_ticket(this, user);
}

void connection_admission::release(std::string const& user) noexcept
{
    std::lock_guard lock(mutex_);
    --total_;
    if (auto it = per_user_.find(user); it != per_user_.end() && --it->second == 0)
        per_user_.erase(it);
}

std::variant<admission_ticket, admission_refusal>
admit(connection_admission& admission, server_metrics& metrics, std::string const& user)
{
    auto r = admission.admit(user);
    if (auto const* no = std::get_if<admission_refusal>(&r))
        (no->reason == admission_refusal::scope::server ? metrics.refused_server_full
                                                        : metrics.refused_user_full)
            .fetch_add(1, std::memory_order_relaxed);
    return r;
}

descriptor_limits descriptor_budget(std::size_t max_connections)
{
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    auto const soft =
        rl.rlim_cur == RLIM_INFINITY ? std::size_t{1} << 20 : static_cast<std::size_t>(rl.rlim_cur);
    descriptor_limits d;
    d.open_file_limit = soft;
    // Long-lived connections stop 1/16 below the limit (at least 64): the
    // database, uploads, upstream requests and short HTTP requests use the
    // rest. The last 1/64 (at least 16) is the pressure zone.
    auto const reserve = std::max<std::size_t>(64, soft / 16);
    auto const derived = soft > reserve ? soft - reserve : 1;
    d.max_connections = max_connections ? max_connections : derived;
    if (max_connections > derived)
        spdlog::warn("--max-connections {} is above what the open-file limit {} allows ({}); "
                     "raise `ulimit -n`",
                     max_connections, soft, derived);
    auto const pressure = std::max<std::size_t>(16, soft / 64);
    d.pressure_threshold = soft > pressure ? static_cast<int>(soft - pressure) : 0;
    return d;
}

} // namespace chatstream::streaming::detail
