#include "chatstream/core/ids.hpp"

#include "chatstream/core/clock.hpp"

#include <atomic>
#include <cstdio>
#include <mutex>
#include <random>

namespace chatstream::core
{

std::string new_id()
{
    // UUIDv7 with a 12-bit monotonic counter in rand_a (RFC 9562 §6.2
    // method 1), so ids made within one millisecond still sort in order.
    static std::mutex mutex;
    static std::int64_t last_ms = 0;
    static std::uint32_t counter = 0;
    thread_local std::mt19937_64 rng{std::random_device{}()};

    std::int64_t ms = now_ms();
    std::uint32_t seq;
    {
        std::lock_guard lock(mutex);
        if (ms <= last_ms)
        {
            ms = last_ms;
            if (++counter > 0xFFF)
            {
                ++ms;
                counter = 0;
            }
        }
        else
            counter = 0;
        last_ms = ms;
        seq = counter;
    }
    std::uint64_t const r = rng();
    char buf[37];
    std::snprintf(buf, sizeof buf, "%08llx-%04llx-7%03x-%04llx-%012llx",
                  static_cast<unsigned long long>((ms >> 16) & 0xFFFFFFFF),
                  static_cast<unsigned long long>(ms & 0xFFFF), seq & 0xFFF,
                  static_cast<unsigned long long>(0x8000 | ((r >> 48) & 0x3FFF)),
                  static_cast<unsigned long long>(r & 0xFFFFFFFFFFFFULL));
    return buf;
}

} // namespace chatstream::core
