// LocalProbe: the local adapter's degraded-mode counters (core/broker_probe.h),
// exported as sluice_broker_errors_total{broker,kind}:
//   decode — stored bodies that did not decode (delivered raw with the header
//            sluice-decode-error)
//   read   — read failures a source rode out (also told to on_source_error)
//   append — append transactions that failed (every publisher in them got the error;
//            the events are sluice_local_queue_write_failures_total)
//
// Ownership and threads: owned (shared_ptr) by the LocalQueue; its sources count
// through the queue. Lock-free; any thread.
#pragma once

#include "core/broker_probe.h"

namespace sluice::local {
enum class LocalError : uint8_t { decode, read, append };
inline constexpr std::array<std::string_view, 3> kLocalErrors{"decode", "read", "append"};
using LocalProbe = CountingProbe<LocalError, 3>;  // std::make_shared<LocalProbe>(kLocalErrors)
}  // namespace sluice::local
