// bench_nats: the plain nats.c side of bench/nats/nats_bench.sh (no sluice code).
//
//   bench_nats prefill  URL STREAM SUBJECT COUNT SIZE    stream (file storage; subjects SUBJECT
//        and SUBJECT.dlq) + COUNT messages on SUBJECT
//   bench_nats baseline URL STREAM SUBJECT DURABLE COUNT BATCH MAX_ACK_PENDING
//        a durable pull consumer with explicit acks: fetch up to BATCH (bounded by the
//        free MaxAckPending window), ack each message; until COUNT are acked
//   bench_nats watch    URL STREAM DURABLE COUNT PID SECONDS
//        polls the durable every 100 ms until COUNT messages are acked or SECONDS
//        passed; samples the RSS of PID meanwhile (sluice's drain)
// Each mode prints one `RESULT key=value ...` line.
#include <nats/nats.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what, natsStatus s) {
  std::fprintf(stderr, "bench_nats: %s: %s (%s)\n", what, natsStatus_GetText(s),
               nats_GetLastError(nullptr));
  std::exit(1);
}

struct Conn {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  explicit Conn(const char* url, int max_pending = 4096) {
    if (auto s = natsConnection_ConnectTo(&nc, url); s != NATS_OK) fail("connect", s);
    jsOptions o;
    jsOptions_Init(&o);
    o.PublishAsync.MaxPending = max_pending;
    if (auto s = natsConnection_JetStream(&js, nc, &o); s != NATS_OK) fail("jetstream", s);
  }
  ~Conn() {
    jsCtx_Destroy(js);
    natsConnection_Destroy(nc);
  }
};

long rss_kb(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return -1;
}

int prefill(const char* url, const char* stream, const char* subject, long count, int size) {
  Conn c(url);
  jsStreamConfig sc;
  jsStreamConfig_Init(&sc);
  sc.Name = stream;
  const std::string dlq = std::string(subject) + ".dlq";  // sluice's dead letters
  const char* subs[] = {subject, dlq.c_str()};
  sc.Subjects = subs;
  sc.SubjectsLen = 2;
  sc.Storage = js_FileStorage;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr{};
  if (auto s = js_AddStream(&si, c.js, &sc, nullptr, &jerr); s != NATS_OK) fail("add stream", s);
  jsStreamInfo_Destroy(si);
  std::string data(static_cast<size_t>(size), 'x');
  const auto t0 = Clock::now();
  for (long i = 0; i < count; ++i) {
    if (auto s = js_PublishAsync(c.js, subject, data.data(), size, nullptr); s != NATS_OK)
      fail("publish", s);
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = 120000;
  if (auto s = js_PublishAsyncComplete(c.js, &po); s != NATS_OK) fail("publish complete", s);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("RESULT prefill count=%ld size=%d seconds=%.2f rate=%.0f\n", count, size, secs,
              count / secs);
  return 0;
}

int baseline(const char* url, const char* stream, const char* subject, const char* durable,
             long count, int batch, int max_ack_pending) {
  Conn c(url);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = durable;
  cc.AckPolicy = js_AckExplicit;
  cc.MaxAckPending = max_ack_pending;
  cc.FilterSubject = subject;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr{};
  const auto t0 = Clock::now();
  if (auto s = js_AddConsumer(&ci, c.js, stream, &cc, nullptr, &jerr); s != NATS_OK)
    fail("add consumer", s);
  jsConsumerInfo_Destroy(ci);
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream;
  so.Consumer = durable;
  so.ManualAck = true;
  natsSubscription* sub = nullptr;
  if (auto s = js_PullSubscribe(&sub, c.js, subject, durable, nullptr, &so, &jerr); s != NATS_OK)
    fail("pull subscribe", s);
  long done = 0;
  const int want = std::min(batch, max_ack_pending);
  while (done < count) {
    natsMsgList list{nullptr, 0};
    natsStatus s = natsSubscription_Fetch(&list, sub, want, 1000, &jerr);
    if (s != NATS_OK && s != NATS_TIMEOUT) fail("fetch", s);
    for (int i = 0; i < list.Count; ++i) {
      if (auto a = natsMsg_Ack(list.Msgs[i], nullptr); a != NATS_OK) fail("ack", a);
      ++done;
    }
    natsMsgList_Destroy(&list);
  }
  natsConnection_Flush(c.nc);
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  natsSubscription_Destroy(sub);
  std::printf("RESULT baseline count=%ld seconds=%.2f rate=%.0f batch=%d max_ack_pending=%d\n",
              done, secs, done / secs, want, max_ack_pending);
  return 0;
}

int watch(const char* url, const char* stream, const char* durable, long count, long pid,
          double seconds) {
  Conn c(url);
  const auto give_up = Clock::now() + std::chrono::duration<double>(seconds);
  Clock::time_point t0{};
  long acked = 0, rss_min = -1, rss_max = 0, rss_last = 0, samples = 0;
  for (;;) {
    jsConsumerInfo* ci = nullptr;
    jsErrCode jerr{};
    if (js_GetConsumerInfo(&ci, c.js, stream, durable, nullptr, &jerr) == NATS_OK) {
      if (t0 == Clock::time_point{}) t0 = Clock::now();  // the consumer exists: sluice started
      acked = static_cast<long>(ci->AckFloor.Consumer);
      jsConsumerInfo_Destroy(ci);
    }
    const long r = rss_kb(pid);
    if (r < 0) {
      std::fprintf(stderr, "bench_nats: process %ld is gone\n", pid);
      return 1;
    }
    if (t0 != Clock::time_point{}) {
      rss_last = r;
      rss_min = rss_min < 0 ? r : std::min(rss_min, r);
      rss_max = std::max(rss_max, r);
      ++samples;
    }
    if (acked >= count || Clock::now() >= give_up) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("RESULT sluice count=%ld seconds=%.2f rate=%.0f drained=%s rss_min_kb=%ld "
              "rss_max_kb=%ld rss_last_kb=%ld samples=%ld\n",
              acked, secs, acked / secs, acked >= count ? "yes" : "no", rss_min, rss_max,
              rss_last, samples);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "prefill" && argc == 7)
    return prefill(argv[2], argv[3], argv[4], std::atol(argv[5]), std::atoi(argv[6]));
  if (mode == "baseline" && argc == 9)
    return baseline(argv[2], argv[3], argv[4], argv[5], std::atol(argv[6]), std::atoi(argv[7]),
                    std::atoi(argv[8]));
  if (mode == "watch" && argc == 8)
    return watch(argv[2], argv[3], argv[4], std::atol(argv[5]), std::atol(argv[6]),
                 std::atof(argv[7]));
  std::fprintf(stderr,
               "usage: bench_nats prefill URL STREAM SUBJECT COUNT SIZE\n"
               "       bench_nats baseline URL STREAM SUBJECT DURABLE COUNT BATCH MAX_ACK_PENDING\n"
               "       bench_nats watch URL STREAM DURABLE COUNT PID SECONDS\n");
  return 2;
}
