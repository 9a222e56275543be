#include "chatstream/streaming/change_feed.hpp"

#include "chatstream/streaming/generation.hpp"

namespace chatstream::streaming
{

void change_feed::watch(std::string const& user_id, std::weak_ptr<subscriber> s)
{
    std::lock_guard lock(mutex_);
    auto& list = by_user_[user_id];
    std::erase_if(list, [](auto const& w) { return w.expired(); });
    auto const sp = s.lock();
    for (auto const& w : list)
        if (w.lock() == sp)
            return;
    list.push_back(std::move(s));
}

void change_feed::publish(std::string const& user_id, frame const& f)
{
    publish_local(user_id, f);
    if (relay_)
        relay_(user_id, f);
}

void change_feed::publish_local(std::string const& user_id, frame const& f)
{
    std::vector<std::shared_ptr<subscriber>> live;
    {
        std::lock_guard lock(mutex_);
        auto it = by_user_.find(user_id);
        if (it == by_user_.end())
            return;
        std::erase_if(it->second,
                      [&](auto const& w)
                      {
                          auto s = w.lock();
                          if (!s)
                              return true;
                          live.push_back(std::move(s));
                          return false;
                      });
        if (it->second.empty())
            by_user_.erase(it);
    }
    // deliver() only posts, but a session's last reference may be released
    // here: do it outside the lock.
    for (auto const& s : live)
        s->deliver(f);
}

std::size_t change_feed::watchers() const
{
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (auto const& [user, list] : by_user_)
        n += list.size();
    return n;
}

} // namespace chatstream::streaming
