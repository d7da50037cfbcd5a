// The Kafka benchmark's two raw programs, on librdkafka's C API only (no sluice code):
//
//   bench_kafka fill    --bootstrap B --topic T --count N [--size 100] [--keys 1000]
//       produces N records of SIZE bytes keyed k0..k(KEYS-1) (librdkafka's default
//       partitioner) with acks=all, and waits for every delivery report.
//   bench_kafka consume --bootstrap B --topic T --group G --count N [--max-seconds S]
//       the physical baseline of a consumer: a group member (cooperative-sticky) that
//       polls, stores each record's offset (enable.auto.offset.store=false, like
//       sluice) and lets auto-commit send them every 100 ms, until N records were
//       seen; then a final synchronous commit. The clock starts at the first record.
//
// Both print one line `name=... count=... seconds=... events_per_s=... [rss_max_kb=...]`.
#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>

namespace {

struct Args {
  std::string mode, bootstrap, topic, group;
  long count = 0;
  int size = 100, keys = 1000, max_seconds = 600;
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_kafka fill --bootstrap B --topic T --count N [--size BYTES] [--keys K]\n"
               "       bench_kafka consume --bootstrap B --topic T --group G --count N"
               " [--max-seconds S]\n");
  std::exit(2);
}

Args parse(int argc, char** argv) {
  if (argc < 2) usage();
  Args a;
  a.mode = argv[1];
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 >= argc) usage();
    std::string_view k = argv[i];
    std::string v = argv[i + 1];
    if (k == "--bootstrap") a.bootstrap = v;
    else if (k == "--topic") a.topic = v;
    else if (k == "--group") a.group = v;
    else if (k == "--count") a.count = std::atol(v.c_str());
    else if (k == "--size") a.size = std::atoi(v.c_str());
    else if (k == "--keys") a.keys = std::atoi(v.c_str());
    else if (k == "--max-seconds") a.max_seconds = std::atoi(v.c_str());
    else usage();
  }
  if ((a.mode != "fill" && a.mode != "consume") || a.bootstrap.empty() || a.topic.empty() ||
      a.count < 1 || a.size < 1 || a.keys < 1 || (a.mode == "consume" && a.group.empty()))
    usage();
  return a;
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "bench_kafka: %s\n", what.c_str());
  std::exit(1);
}

void set(rd_kafka_conf_t* conf, const char* k, const std::string& v) {
  char err[512];
  if (rd_kafka_conf_set(conf, k, v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) die(err);
}

long rss_kb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

double since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

int fill(const Args& a) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", a.bootstrap);
  set(conf, "enable.idempotence", "true");
  set(conf, "linger.ms", "20");
  set(conf, "batch.size", "1000000");
  set(conf, "compression.type", "none");
  static long failed = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err && failed++ == 0)
      std::fprintf(stderr, "bench_kafka: delivery failed: %s\n", rd_kafka_err2str(m->err));
  });
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(err);
  std::string value(static_cast<size_t>(a.size), 'x');
  for (int i = 0; i < a.size; ++i) value[i] = static_cast<char>('a' + i % 26);
  const auto t0 = std::chrono::steady_clock::now();
  char key[32];
  for (long i = 0; i < a.count; ++i) {
    const int klen = std::snprintf(key, sizeof key, "k%ld", i % a.keys);
    for (;;) {
      rd_kafka_resp_err_t e = rd_kafka_producev(
          rk, RD_KAFKA_V_TOPIC(a.topic.c_str()), RD_KAFKA_V_KEY(key, klen),
          RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_END);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(rd_kafka_err2str(e));
      rd_kafka_poll(rk, 50);  // the queue is full: serve delivery reports
    }
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush timed out");
  const double secs = since(t0);
  rd_kafka_destroy(rk);
  std::printf("name=fill count=%ld failed=%ld seconds=%.3f events_per_s=%.0f\n", a.count, failed,
              secs, a.count / secs);
  return failed ? 1 : 0;
}

int consume(const Args& a) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The same consumer settings as sluice's KafkaSource (kafka_client.cc).
  set(conf, "bootstrap.servers", a.bootstrap);
  set(conf, "group.id", a.group);
  set(conf, "client.id", "bench-baseline");
  set(conf, "partition.assignment.strategy", "cooperative-sticky");
  set(conf, "enable.auto.offset.store", "false");
  set(conf, "enable.auto.commit", "true");
  set(conf, "auto.commit.interval.ms", "100");
  set(conf, "auto.offset.reset", "earliest");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die(err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, a.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub)) die(rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(sub);

  long seen = 0, rss_max = 0;
  const auto start = std::chrono::steady_clock::now();
  auto t0 = start;
  auto last_rss = start;
  rd_kafka_topic_partition_list_t* one = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_t* el = rd_kafka_topic_partition_list_add(one, a.topic.c_str(), 0);
  while (seen < a.count) {
    if (since(start) > a.max_seconds) die("gave up after --max-seconds");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      if (seen++ == 0) t0 = std::chrono::steady_clock::now();
      el->partition = m->partition;
      el->offset = m->offset + 1;
      rd_kafka_offsets_store(rk, one);
    } else if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      std::fprintf(stderr, "bench_kafka: %s\n", rd_kafka_message_errstr(m));
    }
    rd_kafka_message_destroy(m);
    if ((seen & 4095) == 0 && since(last_rss) > 0.5) {
      rss_max = std::max(rss_max, rss_kb());
      last_rss = std::chrono::steady_clock::now();
    }
  }
  const double secs = since(t0);
  rss_max = std::max(rss_max, rss_kb());
  rd_kafka_commit(rk, nullptr, 0);
  rd_kafka_topic_partition_list_destroy(one);
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  std::printf("name=baseline count=%ld seconds=%.3f events_per_s=%.0f rss_max_kb=%ld\n", seen, secs,
              seen / secs, rss_max);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  return a.mode == "fill" ? fill(a) : consume(a);
}
