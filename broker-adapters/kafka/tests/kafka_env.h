// Test harness of the Kafka adapter.
//
// kafka_env.cc: one real Kafka broker per test process (tests/kafka/test_broker.h:
// tests/kafka/kafka.sh on a free loopback port, in a temp dir), started by the first
// bootstrap() / skip_reason() / SLUICE_NEED_KAFKA() and stopped at the end (a gtest
// global Environment). SLUICE_TEST_KAFKA_BOOTSTRAP=host:port
// uses a broker that is already running instead. Without java or mvn every test is
// skipped with a message saying so; a broker that fails to start fails every test.
// Also a raw librdkafka producer for records with exact partitions, headers and
// timestamps, and DeleteRecords (to move a partition's log start).
//
// kafka_util.cc (no broker of its own; the mock-cluster tests use it alone):
// publish_sync, event(), unique names. Tests wait on testsupport::Collector.
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "tests/support/collector.h"
#include "tests/support/support.h"

namespace sluice::kafka::testing {

inline constexpr auto kDeadline = std::chrono::seconds(30);

// The running broker ("127.0.0.1:port"); empty when tests are skipped.
const std::string& bootstrap();
// Why tests are skipped (empty when a broker runs).
const std::string& skip_reason();
#define SLUICE_NEED_KAFKA()                                                         \
  do {                                                                              \
    if (!::sluice::kafka::testing::skip_reason().empty())                           \
      GTEST_SKIP() << ::sluice::kafka::testing::skip_reason();                      \
  } while (0)

// A kafka BrokerConfig for the test broker.
BrokerConfig config(std::map<std::string, std::string> options = {});
// make_kafka_broker(config); null (and a test failure) on error.
std::unique_ptr<Broker> open_broker(const BrokerConfig& cfg);
// Publishes through `s` and waits for the delivery report.
Result<PublishAck> publish_sync(Sink& s, const std::string& topic, Event e);
// A small CloudEvent with a fresh id.
Event event(std::string data, std::string key = {});

// A topic/group name no other test (or earlier run) uses.
std::string unique(const std::string& base);

// Checks `pred` every 20 ms until it holds (true) or the deadline passes (false):
// for conditions spread over several collectors.
using testsupport::eventually;

// The one collecting SourceListener of the adapter tests (tests/support/collector.h).
using testsupport::Collector;

// Produces records synchronously (flush after each call) with librdkafka directly.
class RawProducer {
 public:
  RawProducer();
  ~RawProducer();
  // Returns the record's offset; fails the test on error. `timestamp_ms` (unix ms)
  // is the record's CreateTime; 0 = now.
  int64_t produce(const std::string& topic, int32_t partition, const std::string& value,
                  const std::string& key = {},
                  const std::vector<std::pair<std::string, std::string>>& headers = {},
                  int64_t timestamp_ms = 0);

 private:
  rd_kafka_t* rk_ = nullptr;
};

// Deletes the records of topic/partition before `offset` (moves the log start).
void delete_records_before(const std::string& topic, int32_t partition, int64_t offset);

}  // namespace sluice::kafka::testing
