#pragma once
// Admission control for long-lived connections (WebSocket sessions and
// /api/chat streams): a cap for the server and one per user, checked before
// the upgrade so a refusal is a plain HTTP 503 (docs/protocol.md).
#include "chatstream/streaming/metrics.hpp"

#include <cstddef>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>

namespace chatstream::streaming::detail
{

class connection_admission;

/// One admitted connection; releases its place when destroyed. Move-only.
class admission_ticket
{
public:
    admission_ticket() = default;
    admission_ticket(admission_ticket&& other) noexcept;
    admission_ticket& operator=(admission_ticket&& other) noexcept;
    admission_ticket(admission_ticket const&) = delete;
    admission_ticket& operator=(admission_ticket const&) = delete;
    ~admission_ticket();

private:
    friend class connection_admission;
    admission_ticket(connection_admission* owner, std::string user)
        : owner_(owner), user_(std::move(user))
    {
    }
    void release() noexcept;

    connection_admission* owner_ = nullptr;
    std::string user_;
};

struct admission_refusal
{
    enum class scope
    {
        server, ///< --max-connections reached
        user    ///< --max-connections-per-user reached
    } reason;
    std::string message;
};

/// Thread-safe. Outlives every ticket (it lives in server_context, which
/// every session holds).
class connection_admission
{
public:
    connection_admission(std::size_t max_total, std::size_t max_per_user)
        : max_total_(max_total), max_per_user_(max_per_user)
    {
    }

    /// A ticket for @p user (the external id), or why not.
    std::variant<admission_ticket, admission_refusal> admit(std::string const& user);

    std::size_t max_total() const { return max_total_; }

private:
    friend class admission_ticket;
    void release(std::string const& user) noexcept;

    std::size_t const max_total_;
    std::size_t const max_per_user_;
    std::mutex mutex_;
    std::size_t total_ = 0;
    std::unordered_map<std::string, std::size_t> per_user_;
};

/// connection_admission::admit, counted in /metrics when refused.
std::variant<admission_ticket, admission_refusal>
admit(connection_admission& admission, server_metrics& metrics, std::string const& user);

struct descriptor_limits
{
    std::size_t open_file_limit = 0;
    std::size_t max_connections = 0;
    int pressure_threshold = 0; ///< see server_context::fd_pressure_threshold
};

/// Admission limits from RLIMIT_NOFILE; @p max_connections 0 derives the cap.
descriptor_limits descriptor_budget(std::size_t max_connections);

} // namespace chatstream::streaming::detail
