// The broker-independent helpers of kafka_env.h (collector, waits, events), shared by
// the tests on a real broker (kafka_test) and on librdkafka's mock cluster
// (kafka_mock_test).
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/tests/kafka_env.h"

namespace sluice::kafka::testing {

std::unique_ptr<Broker> open_broker(const BrokerConfig& cfg) {
  auto b = make_kafka_broker(cfg);
  if (!b) {
    ADD_FAILURE() << "make_kafka_broker: " << b.error().message;
    return nullptr;
  }
  return std::move(b).value();
}

Result<PublishAck> publish_sync(Sink& s, const std::string& topic, Event e) {
  auto p = std::make_shared<std::promise<Result<PublishAck>>>();
  s.publish(topic, std::move(e), [p](Result<PublishAck> r) { p->set_value(std::move(r)); });
  auto f = p->get_future();
  if (f.wait_for(kDeadline) != std::future_status::ready)
    return Error{Errc::timeout, "no delivery report"};
  return f.get();
}

Event event(std::string data, std::string key) {
  Event e;
  e.id = new_event_id();
  e.source = "/test";
  e.type = "test.event";
  e.data = std::move(data);
  e.key = std::move(key);
  return e;
}

std::string unique(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(getpid()) + "-" + std::to_string(now_unix_ms() % 100000) +
         "-" + std::to_string(n++);
}

void Collector::on_deliveries(Source&, std::vector<Delivery>&& batch) {
  std::lock_guard g(mu_);
  for (auto& d : batch) {
    tags_.push_back(d.tag());
    events_.push_back(std::move(d.event));
  }
  cv_.notify_all();
}

void Collector::on_partitions_revoked(Source&, const std::vector<int32_t>& parts) {
  std::lock_guard g(mu_);
  revoked_.insert(revoked_.end(), parts.begin(), parts.end());
  cv_.notify_all();
}

void Collector::on_source_error(Source&, const Error& err) {}

bool Collector::wait(const std::function<bool(const std::vector<Event>&)>& pred,
                     std::chrono::milliseconds deadline) {
  std::unique_lock l(mu_);
  return cv_.wait_for(l, deadline, [&] { return pred(events_); });
}

bool Collector::wait_data(const std::string& data) {
  return wait([&](const std::vector<Event>& es) {
    for (const auto& e : es)
      if (e.data == data) return true;
    return false;
  });
}

std::vector<Event> Collector::events() {
  std::lock_guard g(mu_);
  return events_;
}
std::vector<DeliveryTag> Collector::tags() {
  std::lock_guard g(mu_);
  return tags_;
}
std::vector<int32_t> Collector::revoked() {
  std::lock_guard g(mu_);
  return revoked_;
}
void Collector::clear() {
  std::lock_guard g(mu_);
  events_.clear();
  tags_.clear();
  revoked_.clear();
}

}  // namespace sluice::kafka::testing
