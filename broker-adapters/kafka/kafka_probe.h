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
enum class KafkaError : uint8_t { decode, consume, client };
inline constexpr std::array<std::string_view, 3> kKafkaErrors{"decode", "consume", "client"};
using KafkaProbe = CountingProbe<KafkaError, 3>;  // std::make_shared<KafkaProbe>(kKafkaErrors)
}  // namespace sluice::kafka
