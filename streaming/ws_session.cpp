#include "detail/ws_session_impl.hpp"

namespace chatstream::streaming::detail
{

//------------------------------------------------------------------------------

void session_registry::add(session_handle* s, std::weak_ptr<session_handle> w)
{
    std::lock_guard lock(mutex_);
    sessions_.emplace(s, std::move(w));
}

void session_registry::remove(session_handle* s)
{
    std::lock_guard lock(mutex_);
    sessions_.erase(s);
}

void session_registry::close_all()
{
    std::vector<std::shared_ptr<session_handle>> live;
    {
        std::lock_guard lock(mutex_);
        for (auto& [p, w] : sessions_)
            if (auto s = w.lock())
                live.push_back(std::move(s));
    }
    // Outside the lock: close() posts, and a session dying here removes itself.
    for (auto& s : live)
        s->close(websocket::close_code::going_away);
}

//------------------------------------------------------------------------------

template class basic_ws_session<boost::beast::tcp_stream>;

} // namespace chatstream::streaming::detail
