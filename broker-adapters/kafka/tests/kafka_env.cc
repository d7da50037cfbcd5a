#include "broker-adapters/kafka/tests/kafka_env.h"

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <thread>

#include "broker-adapters/kafka/kafka_broker.h"

namespace sluice::kafka::testing {
namespace {

std::string g_bootstrap, g_skip;

std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) {
    *status = -1;
    return out;
  }
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  *status = pclose(p);
  return out;
}

bool have(const char* tool) {
  int st = 0;
  run(std::string("command -v ") + tool + " >/dev/null 2>&1", &st);
  return st == 0;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

class KafkaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    if (const char* b = getenv("SLUICE_TEST_KAFKA_BOOTSTRAP"); b && *b) {
      g_bootstrap = b;
      return;
    }
    for (const char* tool : {"java", "mvn", "kcat"})
      if (!have(tool)) {
        g_skip = std::string("no real Kafka: '") + tool +
                 "' is not installed (tests/kafka/kafka.sh needs java, mvn and kcat)";
        return;
      }
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-kafka-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    const int port = free_port();
    ASSERT_GT(port, 0);
    int st = 0;
    std::string out = run(std::string(SLUICE_KAFKA_SH) + " start " + dir_ + " " +
                              std::to_string(port) + " 2>&1",
                          &st);
    ASSERT_EQ(st, 0) << "tests/kafka/kafka.sh start failed:\n" << out;
    g_bootstrap = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    int st = 0;
    run(std::string(SLUICE_KAFKA_SH) + " stop " + dir_ + " 2>&1", &st);
    std::error_code ec;
    if (st == 0 && !getenv("SLUICE_TEST_KEEP")) std::filesystem::remove_all(dir_, ec);
  }

 private:
  std::string dir_;
};

[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

}  // namespace

const std::string& bootstrap() { return g_bootstrap; }
const std::string& skip_reason() { return g_skip; }

BrokerConfig config(std::map<std::string, std::string> options) {
  BrokerConfig c;
  c.name = "kafka";
  c.kind = BrokerKind::kafka;
  c.bootstrap = g_bootstrap;
  c.group = unique("group");
  c.options = std::move(options);
  return c;
}

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

bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

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
                             const std::vector<std::pair<std::string, std::string>>& headers) {
  rd_kafka_headers_t* hs = rd_kafka_headers_new(headers.size());
  for (const auto& [n, v] : headers) rd_kafka_header_add(hs, n.data(), n.size(), v.data(), v.size());
  int64_t offset = -2;
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(partition),
      RD_KAFKA_V_KEY(key.empty() ? nullptr : key.data(), key.size()),
      RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_HEADERS(hs),
      RD_KAFKA_V_OPAQUE(&offset), RD_KAFKA_V_END);
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
