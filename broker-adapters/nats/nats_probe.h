// NatsProbe: the nats adapter's degraded-mode counters (core/broker_probe.h),
// exported as sluice_broker_errors_total{broker,kind}:
//   decode — messages that claimed to be CloudEvents but did not decode (delivered
//            plain with the header sluice-decode-error)
//   fetch  — JetStream source failures ridden out (pull requests, acks, the
//            subscription; also told to on_source_error)
//   async  — asynchronous errors nats.c reported on the connection (e.g. a slow
//            consumer dropping messages of a core subscription)
// Disconnects and reconnects are sluice_broker_connected / _reconnects_total.
//
// Ownership and threads: owned (shared_ptr) by the NatsConn; its sources count
// through the connection. Lock-free; any thread.
#pragma once

#include "core/broker_probe.h"

namespace sluice::nats {

class NatsProbe final : public CountingProbe<3> {
 public:
  NatsProbe() : CountingProbe({"decode", "fetch", "async"}) {}
  void decode_error() { count(0); }
  void fetch_error() { count(1); }
  void async_error() { count(2); }
  uint64_t decode_errors() const { return get(0); }
  uint64_t fetch_errors() const { return get(1); }
  uint64_t async_errors() const { return get(2); }
};

}  // namespace sluice::nats
