#pragma once
/// @file clock.hpp
#include <chrono>
#include <cstdint>

namespace chatstream::core {

/// Wall-clock milliseconds since the Unix epoch: the unit of every stored timestamp.
inline std::int64_t now_ms() noexcept
{
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace chatstream::core
