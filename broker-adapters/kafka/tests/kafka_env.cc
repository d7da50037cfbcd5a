#include "broker-adapters/kafka/tests/kafka_env.h"

#include "tests/kafka/test_broker.h"

namespace sluice::kafka::testing {
namespace {

std::string g_bootstrap, g_skip;
sluice::testsupport::KafkaTestBroker g_broker{SLUICE_KAFKA_SH};

// The broker starts on first use (a test process whose tests need no Kafka, e.g. a
// filtered contract run, starts none) and stops at the end of the process.
void ensure_started() {
  static const bool started = [] {
    const std::string err = g_broker.start();
    EXPECT_EQ(err, "");
    g_bootstrap = g_broker.bootstrap();
    g_skip = g_broker.skip_reason();
    return true;
  }();
  (void)started;
}

class KafkaEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { g_broker.stop(); }  // nothing when never started
};

[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

}  // namespace

const std::string& bootstrap() {
  ensure_started();
  return g_bootstrap;
}
const std::string& skip_reason() {
  ensure_started();
  return g_skip;
}

BrokerConfig config(std::map<std::string, std::string> options) {
  BrokerConfig c;
  c.name = "kafka";
  c.settings = KafkaBrokerConfig{};
  c.kafka().bootstrap = g_bootstrap;
  c.kafka().group = unique("group");
  c.kafka().options = std::move(options);
  return c;
}

RawProducer::RawProducer() {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", g_bootstrap.c_str(), err, sizeof err);
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    *static_cast<int64_t*>(m->_private) = m->err ? -1 : m->offset;
  });
  rk_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  EXPECT_NE(rk_, nullptr) << err;
}

RawProducer::~RawProducer() {
  if (rk_) rd_kafka_destroy(rk_);
}

int64_t RawProducer::produce(const std::string& topic, int32_t partition,
                             const std::string& value, const std::string& key,
                             const std::vector<std::pair<std::string, std::string>>& headers,
                             int64_t timestamp_ms) {
  rd_kafka_headers_t* hs = rd_kafka_headers_new(headers.size());
  for (const auto& [n, v] : headers) rd_kafka_header_add(hs, n.data(), n.size(), v.data(), v.size());
  int64_t offset = -2;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hs),
      RD_KAFKA_V_TIMESTAMP(timestamp_ms), RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END);
  EXPECT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_err2str(err);
  if (err) {
    rd_kafka_headers_destroy(hs);
    return -1;
  }
  EXPECT_EQ(rd_kafka_flush(rk_, 30000), RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_GE(offset, 0) << "record to " << topic << "/" << partition << " not delivered";
  return offset;
}

void delete_records_before(const std::string& topic, int32_t partition, int64_t offset) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  rd_kafka_conf_set(conf, "bootstrap.servers", g_bootstrap.c_str(), err, sizeof err);
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(l, topic.c_str(), partition)->offset = offset;
  rd_kafka_DeleteRecords_t* del = rd_kafka_DeleteRecords_new(l);
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_DeleteRecords(rk, &del, 1, nullptr, q);
  rd_kafka_DeleteRecords_destroy(del);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 30000);
  ASSERT_NE(ev, nullptr) << "DeleteRecords: no answer";
  EXPECT_EQ(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_event_error_string(ev);
  const auto* res = rd_kafka_event_DeleteRecords_result(ev);
  ASSERT_NE(res, nullptr);
  const auto* offs = rd_kafka_DeleteRecords_result_offsets(res);
  ASSERT_EQ(offs->cnt, 1);
  EXPECT_EQ(offs->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_err2str(offs->elems[0].err);
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(q);
  rd_kafka_destroy(rk);
}

}  // namespace sluice::kafka::testing
