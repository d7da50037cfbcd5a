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
enum class NatsError : uint8_t { decode, fetch, async };
inline constexpr std::array<std::string_view, 3> kNatsErrors{"decode", "fetch", "async"};
using NatsProbe = CountingProbe<NatsError, 3>;  // std::make_shared<NatsProbe>(kNatsErrors)
}  // namespace sluice::nats
