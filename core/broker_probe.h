// BrokerProbe: a broker adapter's degraded-mode counters (Redpanda's `probe`
// classes). Each failure an adapter rides out is logged where it happens
// (rate-limited, core/log_limit.h) and counted in its probe; the probe is read at
// every scrape and exported as sluice_broker_errors_total{broker,kind}
// (metrics/metrics.h Metrics::add_probe).
//
// Threads: lock-free (relaxed atomics); any thread counts, any thread reads.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace sluice {

// One counter: failures of one kind since start.
struct ErrorCount {
  std::string_view kind;  // a static string of the adapter, e.g. "decode"
  uint64_t count = 0;
};

class BrokerProbe {
 public:
  virtual ~BrokerProbe() = default;
  // Every kind the adapter counts, zeros included (a series exists before it moves).
  virtual std::vector<ErrorCount> error_counts() const = 0;
};

// A probe of N counters indexed by the enum `Kind` (0..N-1) and named `kinds`
// (kinds[i] names Kind(i)). Each adapter's probe is one (kafka_probe.h,
// local_probe.h, nats_probe.h).
template <class Kind, size_t N>
class CountingProbe final : public BrokerProbe {
 public:
  explicit CountingProbe(std::array<std::string_view, N> kinds) : kinds_(kinds) {}

  void count(Kind k) { n_[index(k)].fetch_add(1, std::memory_order_relaxed); }
  uint64_t get(Kind k) const { return n_[index(k)].load(std::memory_order_relaxed); }

  std::vector<ErrorCount> error_counts() const override {
    std::vector<ErrorCount> out;
    for (size_t i = 0; i < N; ++i) out.push_back({kinds_[i], n_[i].load(std::memory_order_relaxed)});
    return out;
  }

 private:
  static size_t index(Kind k) { return static_cast<size_t>(k); }

  const std::array<std::string_view, N> kinds_;
  std::array<std::atomic<uint64_t>, N> n_{};
};

}  // namespace sluice
