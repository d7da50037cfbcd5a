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

}  // namespace sluice::kafka::testing
