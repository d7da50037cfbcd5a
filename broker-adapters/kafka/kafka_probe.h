// KafkaProbe: the kafka adapter's degraded-mode counters (core/broker_probe.h),
// exported as sluice_broker_errors_total{broker,kind}:
//   decode  — records that claimed to be CloudEvents but did not decode (delivered
//             plain with the header sluice-decode-error)
//   consume — consumer errors a source rode out (also told to on_source_error)
//   client  — producer errors librdkafka reported through its error callback
//
// Ownership and threads: made by KafkaBroker and shared (shared_ptr) with its sink
// and every source it makes, since sources may outlive the broker. Lock-free; any
// thread.
#pragma once

#include "core/broker_probe.h"

namespace sluice::kafka {

class KafkaProbe final : public CountingProbe<3> {
 public:
  KafkaProbe() : CountingProbe({"decode", "consume", "client"}) {}
  void decode_error() { count(0); }
  void consume_error() { count(1); }
  void client_error() { count(2); }
  uint64_t decode_errors() const { return get(0); }
  uint64_t consume_errors() const { return get(1); }
  uint64_t client_errors() const { return get(2); }
};

}  // namespace sluice::kafka
