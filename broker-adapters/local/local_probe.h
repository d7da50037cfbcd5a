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

class LocalProbe final : public CountingProbe<3> {
 public:
  LocalProbe() : CountingProbe({"decode", "read", "append"}) {}
  void decode_error() { count(0); }
  void read_error() { count(1); }
  void append_error() { count(2); }
  uint64_t decode_errors() const { return get(0); }
  uint64_t read_errors() const { return get(1); }
  uint64_t append_errors() const { return get(2); }
};

}  // namespace sluice::local
