#pragma once
/// @file ids.hpp
/// Sortable text ids (UUIDv7 layout: 48-bit millisecond timestamp first).
#include <string>

namespace chatstream::core
{

/// A new id, e.g. `0193a5c2-7f1e-7a3b-8c4d-1e2f3a4b5c6d`. Ids created later
/// (in the same process) sort after earlier ones, so they work as keyset
/// cursors. Thread-safe.
std::string new_id();

} // namespace chatstream::core
