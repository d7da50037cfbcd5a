// The Kafka benchmark's two raw programs, on librdkafka's C API only (no sluice code):
//
//   bench_kafka fill    --bootstrap B --topic T --count N [--size 100] [--keys 1000] [--types A,B,...]
//       produces N records of SIZE bytes keyed k0..k(KEYS-1) (librdkafka's default
//       partitioner) with acks=all, and waits for every delivery report. With --types,
//       each record is a binary-mode CloudEvent (ce_specversion, ce_id, ce_source,
//       ce_type headers) whose type takes the listed values in turn (filter benches).
//   bench_kafka consume --bootstrap B --topic T --group G --count N [--max-seconds S]
//       the physical baseline of a consumer: a group member (cooperative-sticky) that
//       polls, stores each record's offset (enable.auto.offset.store=false, like
//       sluice) and lets auto-commit send them every 100 ms, until N records were
//       seen; then a final synchronous commit. The clock starts at the first record.
//
//   bench_kafka paced   --bootstrap B --topic T --rate R --seconds S [--warmup W] [--size 100] [--keys 1000]
//       produces R records/s (in 1 ms steps) for W seconds of warm-up (values without
//       a time) and then S seconds whose values start with the time of produce() in
//       microseconds since the epoch (CLOCK_REALTIME) — for the latency of whoever
//       consumes them (latency_function.c in sluice, `consume --latency 1` plain).
//       linger.ms=1, acks=all (idempotent, as sluice's producer).
//   bench_kafka consume ... --latency 1
//       as consume, and also the publish-to-consumer latency of the timed records.
//
//   bench_kafka watch   --bootstrap B --topic T --group G --count N --pid PID [--max-seconds S]
//       watches a consumer group from outside: the sum of its committed offsets over
//       the topic's partitions every 50 ms, and the RSS of PID, until the committed
//       sum reaches N or S seconds passed. Start it right after starting PID: the
//       clock runs from then to the last committed progress, so both sides are timed
//       alike, by what they committed, start-up and group join included. RSS is
//       also given when 25, 50, 75 and 100 % were committed (flat or growing?).
//
// Each prints one line `RESULT name=... count=... seconds=... events_per_s=... ...`.
#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>
#include <ctime>

namespace {

struct Args {
  std::string mode, bootstrap, topic, group;
  long count = 0, pid = 0, rate = 0;
  int size = 100, keys = 1000, max_seconds = 600, seconds = 0, warmup = 8, latency = 0;
  std::vector<std::pair<std::string, std::string>> consumer_options;  // --set k=v (consume)
  std::vector<std::string> types;  // --types A,B (fill): ce_type of record i is types[i % n]
};

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bench_kafka fill --bootstrap B --topic T --count N [--size BYTES] [--keys K]"
               " [--types A,B,...]\n"
               "       bench_kafka consume --bootstrap B --topic T --group G --count N"
               " [--max-seconds S]\n"
               "       bench_kafka paced --bootstrap B --topic T --rate R --seconds S [--warmup W]"
               " [--size BYTES] [--keys K]\n"
               "       bench_kafka consume ... --latency 1 | --set librdkafka.key=value ...\n"
               "       bench_kafka watch --bootstrap B --topic T --group G --count N --pid PID"
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
    else if (k == "--pid") a.pid = std::atol(v.c_str());
    else if (k == "--rate") a.rate = std::atol(v.c_str());
    else if (k == "--seconds") a.seconds = std::atoi(v.c_str());
    else if (k == "--warmup") a.warmup = std::atoi(v.c_str());
    else if (k == "--latency") a.latency = std::atoi(v.c_str());
    else if (k == "--types") {
      for (size_t at = 0; at <= v.size();) {
        const size_t comma = std::min(v.find(',', at), v.size());
        if (comma > at) a.types.push_back(v.substr(at, comma - at));
        at = comma + 1;
      }
    } else if (k == "--set" && v.find('=') != std::string::npos)
      a.consumer_options.emplace_back(v.substr(0, v.find('=')), v.substr(v.find('=') + 1));
    else usage();
  }
  if (a.mode == "paced") {
    if (a.bootstrap.empty() || a.topic.empty() || a.rate < 1 || a.seconds < 1 || a.warmup < 0 ||
        a.size < 20 || a.keys < 1)
      usage();
    return a;
  }
  if ((a.mode != "fill" && a.mode != "consume" && a.mode != "watch") || a.bootstrap.empty() ||
      a.topic.empty() || a.count < 1 || a.size < 1 || a.keys < 1 ||
      (a.mode != "fill" && a.group.empty()) || (a.mode == "watch" && a.pid < 1))
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

long rss_kb(const std::string& pid = "self") {
  std::ifstream in("/proc/" + pid + "/status");
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
      rd_kafka_headers_t* hdrs = nullptr;
      if (!a.types.empty()) {
        const std::string id = std::to_string(i);
        const std::string& type = a.types[static_cast<size_t>(i) % a.types.size()];
        hdrs = rd_kafka_headers_new(4);
        rd_kafka_header_add(hdrs, "ce_specversion", -1, "1.0", 3);
        rd_kafka_header_add(hdrs, "ce_id", -1, id.data(), static_cast<ssize_t>(id.size()));
        rd_kafka_header_add(hdrs, "ce_source", -1, "/bench", 6);
        rd_kafka_header_add(hdrs, "ce_type", -1, type.data(), static_cast<ssize_t>(type.size()));
      }
      rd_kafka_resp_err_t e =
          hdrs ? rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a.topic.c_str()), RD_KAFKA_V_KEY(key, klen),
                                   RD_KAFKA_V_VALUE(value.data(), value.size()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                   RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_END)
               : rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(a.topic.c_str()), RD_KAFKA_V_KEY(key, klen),
                                   RD_KAFKA_V_VALUE(value.data(), value.size()),
                                   RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
      // The headers belong to the message once it is queued; not on a failure.
      if (e != RD_KAFKA_RESP_ERR_NO_ERROR && hdrs) rd_kafka_headers_destroy(hdrs);
      if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
      if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(rd_kafka_err2str(e));
      rd_kafka_poll(rk, 50);  // the queue is full: serve delivery reports
    }
    if ((i & 1023) == 0) rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush timed out");
  const double secs = since(t0);
  rd_kafka_destroy(rk);
  std::printf("RESULT name=fill count=%ld failed=%ld seconds=%.3f events_per_s=%.0f\n", a.count, failed,
              secs, a.count / secs);
  return failed ? 1 : 0;
}

long long now_us() {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return static_cast<long long>(t.tv_sec) * 1000000LL + t.tv_nsec / 1000;
}

int paced(const Args& a) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", a.bootstrap);
  set(conf, "enable.idempotence", "true");
  set(conf, "linger.ms", "1");
  set(conf, "compression.type", "none");
  static long failed = 0;
  rd_kafka_conf_set_dr_msg_cb(conf, [](rd_kafka_t*, const rd_kafka_message_t* m, void*) {
    if (m->err && failed++ == 0)
      std::fprintf(stderr, "bench_kafka: delivery failed: %s\n", rd_kafka_err2str(m->err));
  });
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) die(err);
  std::string value(static_cast<size_t>(a.size), '-');
  char key[32];
  const long per_ms = std::max(1L, a.rate / 1000);
  const long total_ms = 1000L * (a.warmup + a.seconds);
  long sent = 0, late_ms = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (long ms = 0; ms < total_ms; ++ms) {
    const auto slot = t0 + std::chrono::milliseconds(ms);
    if (std::chrono::steady_clock::now() > slot + std::chrono::milliseconds(5)) ++late_ms;
    std::this_thread::sleep_until(slot);
    const bool timed = ms >= 1000L * a.warmup;
    for (long i = 0; i < per_ms; ++i, ++sent) {
      if (timed) {
        const int n = std::snprintf(value.data(), value.size(), "%lld", now_us());
        value[static_cast<size_t>(n)] = '-';  // snprintf's NUL: back to padding
      }
      const int klen = std::snprintf(key, sizeof key, "k%ld", sent % a.keys);
      for (;;) {
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(a.topic.c_str()), RD_KAFKA_V_KEY(key, klen),
            RD_KAFKA_V_VALUE(value.data(), value.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR) break;
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) die(rd_kafka_err2str(e));
        rd_kafka_poll(rk, 1);
      }
    }
    rd_kafka_poll(rk, 0);
  }
  if (rd_kafka_flush(rk, 120000) != RD_KAFKA_RESP_ERR_NO_ERROR) die("flush timed out");
  const double secs = since(t0);
  rd_kafka_destroy(rk);
  std::printf("RESULT name=paced count=%ld failed=%ld seconds=%.3f events_per_s=%.0f late_ms=%ld\n",
              sent, failed, secs, sent / secs, late_ms);
  return failed ? 1 : 0;
}

// Publish-to-consumer latency of timed records (values that start with digits).
struct Latency {
  static constexpr long kBucketUs = 10, kBuckets = 100001;
  std::vector<unsigned long> counts = std::vector<unsigned long>(kBuckets);
  unsigned long seen = 0;
  long long max = 0;
  void add(const rd_kafka_message_t* m) {
    long long ts = 0;
    const char* p = static_cast<const char*>(m->payload);
    for (size_t i = 0; i < m->len && p[i] >= '0' && p[i] <= '9'; ++i) ts = ts * 10 + (p[i] - '0');
    if (ts <= 0) return;
    const long long d = std::max(0LL, now_us() - ts);
    ++counts[std::min<long long>(d / kBucketUs, kBuckets - 1)];
    ++seen;
    max = std::max(max, d);
  }
  long long pct(double q) const {
    unsigned long want = std::min<unsigned long>(seen - 1, static_cast<unsigned long>(q * seen)), run = 0;
    for (long b = 0; b < kBuckets; ++b)
      if ((run += counts[b]) > want) return (b + 1) * kBucketUs;
    return -1;
  }
};

int consume(const Args& a) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // sluice's KafkaSource settings (kafka_client.cc) for groups and offsets; the
  // prefetch is librdkafka's default, as a plain consumer has it.
  set(conf, "bootstrap.servers", a.bootstrap);
  set(conf, "group.id", a.group);
  set(conf, "client.id", "bench-baseline");
  set(conf, "partition.assignment.strategy", "cooperative-sticky");
  set(conf, "enable.auto.offset.store", "false");
  set(conf, "enable.auto.commit", "true");
  set(conf, "auto.commit.interval.ms", "100");
  set(conf, "auto.offset.reset", "earliest");
  for (const auto& [k, v] : a.consumer_options) set(conf, k.c_str(), v);
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die(err);
  rd_kafka_poll_set_consumer(rk);
  rd_kafka_topic_partition_list_t* sub = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(sub, a.topic.c_str(), RD_KAFKA_PARTITION_UA);
  if (rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, sub)) die(rd_kafka_err2str(e));
  rd_kafka_topic_partition_list_destroy(sub);

  long seen = 0, rss_max = 0;
  Latency latency;
  const auto start = std::chrono::steady_clock::now();
  auto t0 = start;
  auto last_rss = start;
  while (seen < a.count) {
    if (since(start) > a.max_seconds) die("gave up after --max-seconds");
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 100);
    if (!m) continue;
    if (!m->err) {
      if (seen++ == 0) t0 = std::chrono::steady_clock::now();
      if (a.latency) latency.add(m);
      // Stores m->offset + 1 (no allocation; a reused partition list would not do:
      // librdkafka caches the partition of an element in it).
      rd_kafka_offset_store(m->rkt, m->partition, m->offset);
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
  rd_kafka_consumer_close(rk);
  rd_kafka_destroy(rk);
  std::printf("RESULT name=consume count=%ld seconds=%.3f events_per_s=%.0f rss_max_kb=%ld\n", seen, secs,
              seen / secs, rss_max);
  if (a.latency && latency.seen)
    std::printf("RESULT name=latency count=%lu p50_us=%lld p99_us=%lld p999_us=%lld max_us=%lld\n",
                latency.seen, latency.pct(0.50), latency.pct(0.99), latency.pct(0.999), latency.max);
  return 0;
}

int watch(const Args& a) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  set(conf, "bootstrap.servers", a.bootstrap);
  set(conf, "group.id", a.group);  // only to read the group's committed offsets
  set(conf, "client.id", "bench-watch");
  char err[512];
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
  if (!rk) die(err);
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, a.topic.c_str(), nullptr);
  if (rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 10000)) die(rd_kafka_err2str(e));
  int parts = md->topic_cnt == 1 ? md->topics[0].partition_cnt : 0;
  rd_kafka_metadata_destroy(md);
  rd_kafka_topic_destroy(rkt);
  if (parts < 1) die("topic " + a.topic + " has no partitions");
  rd_kafka_topic_partition_list_t* l = rd_kafka_topic_partition_list_new(parts);
  for (int p = 0; p < parts; ++p) rd_kafka_topic_partition_list_add(l, a.topic.c_str(), p);

  const std::string pid = std::to_string(a.pid);
  const auto start = std::chrono::steady_clock::now();
  auto t_last = start;
  long last = 0, rss_min = 0, rss_max = 0, rss_last = 0;
  long rss_at[4] = {0, 0, 0, 0};  // RSS when 25 / 50 / 75 / 100 % were committed
  bool gone = false;
  while (since(start) < a.max_seconds) {
    const long rss = rss_kb(pid);
    if (rss == 0) gone = true;  // it finished (the baseline exits when done)
    if (!gone) {
      rss_last = rss;
      rss_max = std::max(rss_max, rss);
      rss_min = rss_min ? std::min(rss_min, rss) : rss;
    }
    if (rd_kafka_committed(rk, l, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
      long sum = 0;
      for (int i = 0; i < l->cnt; ++i)
        if (l->elems[i].offset > 0) sum += l->elems[i].offset;
      if (sum > last) last = sum, t_last = std::chrono::steady_clock::now();
      for (int q = 0; q < 4; ++q)
        if (!rss_at[q] && !gone && sum * 4 >= a.count * (q + 1)) rss_at[q] = rss_last;
      if (sum >= a.count) break;
    }
    if (gone && since(t_last) > 5) break;  // nothing more will come
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  rd_kafka_topic_partition_list_destroy(l);
  rd_kafka_destroy(rk);
  const double secs = std::chrono::duration<double>(t_last - start).count();
  std::printf("RESULT name=watch count=%ld seconds=%.3f events_per_s=%.0f drained=%d "
              "rss_min_kb=%ld rss_max_kb=%ld rss_last_kb=%ld rss_quarters_kb=%ld/%ld/%ld/%ld\n",
              last, secs, secs > 0 ? last / secs : 0.0, last >= a.count ? 1 : 0, rss_min,
              rss_max, rss_last, rss_at[0], rss_at[1], rss_at[2], rss_at[3]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  if (a.mode == "fill") return fill(a);
  if (a.mode == "paced") return paced(a);
  if (a.mode == "consume") return consume(a);
  return watch(a);
}
