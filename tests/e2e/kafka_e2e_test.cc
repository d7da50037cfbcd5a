// End-to-end on a real Kafka (KRaft, tests/kafka/kafka.sh): the `sluice` binary
// consumes a topic with an exec function and commits only what finished — order per
// key over 100,000 events, kill -9 and restart, two processes in one group, dead
// letters that keep the original record, `sluice dlq list|show|replay`, retry topics,
// `sluice lag` (messages and seconds, topics without a subscriber), bad broker configs.
//
// One broker per test process (a gtest Environment), or the one named by
// SLUICE_TEST_KAFKA_BOOTSTRAP; every test uses its own topics and consumer group.
// Records are produced and read back with kcat, independently of sluice's adapter.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "harness.h"
#include "tests/kafka/test_broker.h"

namespace sluice::e2e {
namespace {

std::string g_bootstrap, g_skip;

class KafkaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const std::string err = broker_.start();
    ASSERT_EQ(err, "");
    g_bootstrap = broker_.bootstrap();
    g_skip = broker_.skip_reason();
  }
  void TearDown() override { broker_.stop(); }

 private:
  // tests/e2e/kafka_e2e_test.cc -> tests/kafka/kafka.sh
  sluice::testsupport::KafkaTestBroker broker_{
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "kafka" / "kafka.sh")
          .string()};
};
[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

#define NEED_KAFKA() \
  if (!g_skip.empty()) GTEST_SKIP() << g_skip

std::string unique(const std::string& base) {
  static std::atomic<int> n{0};
  return base + "-" + std::to_string(getpid()) + "-" + std::to_string(::time(nullptr) % 100000) +
         "-" + std::to_string(n++);
}

// Events of the test function: one line "PARTITION OFFSET KEY SEQ" per processed
// record (the record's value is "KEY SEQ"). `read` and `echo` are shell built-ins,
// so each event costs one process (dash), which is what the exec runtime runs.
const char* kRecord =
    R"(read -r d; echo "$SLUICE_PARTITION $SLUICE_OFFSET $d" >> processed.log)";

// A killed group member is noticed after session.timeout.ms: 6 s (the broker's
// minimum) instead of librdkafka's 45 s.
const std::string kFastFailover =
    R"("session.timeout.ms": "6000", "heartbeat.interval.ms": "500")";

struct FunctionSpec {
  std::string name = "rec";
  std::string topic;
  std::string ordering = "key";
  int concurrency = 8;
  std::string script = kRecord;
  std::string extra;  // more keys of the function, each line indented by 4
};

std::string config(uint16_t port, const std::string& group, const FunctionSpec& f,
                   const std::string& options = "", const std::string& bootstrap = g_bootstrap) {
  return "brokers:\n"
         "  kafka: { kind: kafka, bootstrap: \"" + bootstrap + "\", group: " + group +
         (options.empty() ? "" : ", options: { " + options + " }") + " }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
         "engine: { drain_timeout: 30s }\n"
         "functions:\n"
         "  - name: " + f.name + "\n"
         "    command: [sh, -c, '" + f.script + "']\n"
         "    concurrency: " + std::to_string(f.concurrency) + "\n"
         "    subscribe: [{ broker: kafka, topic: " + f.topic + ", ordering: " + f.ordering +
         " }]\n" + f.extra;
}

// `count` records "kNNNN SEQ" keyed kNNNN over `keys` keys, key i % keys getting
// sequence i / keys (so every key's records are spread over the whole run).
std::string keyed_records(int count, int keys, int first = 0) {
  std::string out;
  out.reserve(static_cast<size_t>(count) * 20);
  char buf[64];
  for (int i = first; i < first + count; ++i) {
    const int n = snprintf(buf, sizeof buf, "k%04d:k%04d %d\n", i % keys, i % keys, i / keys);
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// Produces "key:value" lines with kcat, partitioned like the Java client and sluice
// (murmur2 of the key; librdkafka's own default, CRC32, would put a key elsewhere than
// sluice's replay and dead letters do). Idempotent: librdkafka's default producer keeps up to 1M
// requests in flight and retries them, which may store a partition's records out of
// the order they were sent in -- the order tests need the topic to hold each key's
// records in sequence. Fails the test when kcat does.
void produce(const std::string& topic, const std::string& lines,
             const std::vector<std::string>& extra = {}) {
  std::vector<std::string> argv{"kcat", "-P", "-b", g_bootstrap, "-t", topic, "-K", ":",
                                "-X", "enable.idempotence=true", "-X",
                                "topic.partitioner=murmur2_random"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto r = run_cmd(argv, lines);
  ASSERT_EQ(r.exit_code, 0) << r.err;
}

// Every record of `topic` as kcat's JSON envelope (key, payload, headers...).
std::vector<nlohmann::json> consume_all(const std::string& topic) {
  auto r = run_cmd({"kcat", "-C", "-b", g_bootstrap, "-t", topic, "-o", "beginning", "-e", "-J",
                    "-q"});
  std::vector<nlohmann::json> out;
  if (r.exit_code != 0) return out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

// The partition count of `topic` (kcat metadata), -1 when unknown.
int partitions_of(const std::string& topic) {
  auto r = run_cmd({"kcat", "-L", "-b", g_bootstrap, "-t", topic, "-J"});
  if (r.exit_code != 0) return -1;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (j.is_discarded() || j["topics"].empty()) return -1;
  return static_cast<int>(j["topics"][0]["partitions"].size());
}

struct Processed {
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  int seq = -1;
};

std::vector<Processed> read_processed(const std::string& path) {
  std::vector<Processed> out;
  for (const auto& l : lines(path)) {
    std::istringstream in(l);
    Processed p;
    in >> p.partition >> p.offset >> p.key >> p.seq;
    out.push_back(p);
  }
  return out;
}

// The (key, seq) pairs of `count` keyed_records that are missing from `ps`.
size_t missing(const std::vector<Processed>& ps, int count, int keys) {
  std::set<std::pair<std::string, int>> seen;
  for (const auto& p : ps) seen.insert({p.key, p.seq});
  size_t n = 0;
  char key[16];
  for (int i = 0; i < count; ++i) {
    snprintf(key, sizeof key, "k%04d", i % keys);
    n += seen.count({key, i / keys}) == 0;
  }
  return n;
}

size_t unique_records(const std::vector<Processed>& ps) {
  std::set<std::pair<std::string, int>> seen;
  for (const auto& p : ps) seen.insert({p.key, p.seq});
  return seen.size();
}

// One row of `sluice lag`: BROKER TOPIC PARTITION GROUP COMMITTED END LAG LAG_SECONDS.
struct LagRow {
  std::string broker, topic, partition, group, committed, end, lag, secs;
};

std::vector<LagRow> lag_rows(const std::string& out) {
  std::vector<LagRow> rows;
  std::istringstream in(out);
  for (std::string l; std::getline(in, l);) {
    std::istringstream row(l);
    LagRow r;
    row >> r.broker >> r.topic >> r.partition >> r.group >> r.committed >> r.end >> r.lag >> r.secs;
    rows.push_back(r);
  }
  return rows;
}

// The group's committed offset of each partition of `topic` (`sluice lag`; a partition
// with no commit yet is 0), or nullopt when the query failed.
std::optional<std::map<int32_t, int64_t>> committed_offsets(const std::string& cfg,
                                                            const std::string& topic) {
  auto r = run_cli({"lag", "-c", cfg});
  if (r.exit_code != 0) return std::nullopt;
  std::map<int32_t, int64_t> out;
  for (const auto& row : lag_rows(r.out)) {
    if (row.topic != topic) continue;
    out[std::stoi(row.partition)] = row.committed == "-" ? 0 : std::stoll(row.committed);
  }
  return out;
}

// Events to push through the key-ordering test; SLUICE_E2E_KAFKA_EVENTS overrides.
int events_for_order_test() {
  if (const char* v = getenv("SLUICE_E2E_KAFKA_EVENTS"); v && atoi(v) > 0) return atoi(v);
  return 100000;
}

TEST(KafkaEndToEnd, KeyOrderedEventsAreEachProcessedOnceAndInOrderPerKey) {
  NEED_KAFKA();
  const int count = events_for_order_test(), keys = 1000;
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.topic = unique("ordered");
  f.concurrency = 8;
  dir.write("sluice.yaml", config(port, unique("g"), f));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  const auto start = std::chrono::steady_clock::now();
  produce(f.topic, keyed_records(count, keys));
  ASSERT_EQ(partitions_of(f.topic), 6);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= size_t(count); },
                         600s))
      << lines(dir.file("processed.log")).size() << " of " << count << " processed\n"
      << dir.read("engine.log");
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");

  const auto ps = read_processed(dir.file("processed.log"));
  EXPECT_EQ(ps.size(), size_t(count));  // the happy path: exactly once
  EXPECT_EQ(missing(ps, count, keys), 0u);
  // Order per key: each key's records ran in offset order (sluice's promise: a key's
  // next event starts only after the previous one has written its line), and its
  // sequence numbers appear as 0, 1, 2, ... (the topic holds them in that order).
  std::map<std::string, int> next;
  std::map<std::string, int64_t> last_offset;
  std::map<std::string, int32_t> partition_of;
  size_t out_of_offset_order = 0, out_of_order = 0;
  for (const auto& p : ps) {
    if (p.seq != next[p.key]++) ++out_of_order;
    auto [lo, first] = last_offset.emplace(p.key, p.offset);
    if (!first && p.offset <= lo->second) ++out_of_offset_order;
    lo->second = p.offset;
    auto [it, fresh] = partition_of.emplace(p.key, p.partition);
    EXPECT_EQ(it->second, p.partition) << p.key << " moved partition";
  }
  EXPECT_EQ(out_of_offset_order, 0u) << "sluice ran a key's records out of offset order";
  EXPECT_EQ(out_of_order, 0u) << "sequence numbers out of order ("
                              << (out_of_offset_order ? "sluice's order" : "the topic's order")
                              << ")";
  EXPECT_EQ(partition_of.size(), size_t(keys));
  std::set<int32_t> used;
  for (const auto& [k, p] : partition_of) used.insert(p);
  EXPECT_EQ(used.size(), 6u);
  std::cout << "[ info ] " << count << " events over 6 partitions, " << keys << " keys: "
            << secs << " s, " << count / secs << " events/s\n";
}

TEST(KafkaEndToEnd, KillNineMidStreamThenRestartLosesNothing) {
  NEED_KAFKA();
  const int count = 10000, keys = 100;
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.topic = unique("kill");
  // The killed member's partitions go to the restarted one after session.timeout.ms
  // (librdkafka's default: 45 s).
  dir.write("sluice.yaml", config(port, unique("g"), f, kFastFailover));
  produce(f.topic, keyed_records(count, keys));

  size_t before_kill = 0;
  std::map<int32_t, int64_t> committed;  // the group's commits once the engine is dead
  {
    Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 3000; }, 300s))
        << dir.read("engine.log");
    engine.signal(SIGKILL);
    EXPECT_EQ(engine.wait_exit(), 128 + SIGKILL);
    before_kill = lines(dir.file("processed.log")).size();
  }
  // Read after the kill, when nothing commits any more (a commit still in flight can
  // only land later and raise them): where the restart begins, at most.
  auto c = committed_offsets(dir.file("sluice.yaml"), f.topic);
  ASSERT_TRUE(c.has_value());
  committed = *c;
  ASSERT_LT(before_kill, size_t(count)) << "the kill came too late to be mid-stream";
  int64_t committed_total = 0;
  for (const auto& [p, o] : committed) committed_total += o;
  // sluice commits as it goes: thousands finished, some of them are committed.
  EXPECT_GT(committed_total, 0) << "nothing committed after " << before_kill << " events";

  Engine again(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(again.wait_ready(port)) << dir.read("engine.log");
  ASSERT_TRUE(eventually(
      [&] { return missing(read_processed(dir.file("processed.log")), count, keys) == 0; }, 300s))
      << missing(read_processed(dir.file("processed.log")), count, keys) << " missing\n"
      << dir.read("engine.log");
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait_exit(), 0) << dir.read("engine.log");

  // At least once, and only the uncommitted tail twice: a record that ran twice sits at
  // or above its partition's committed offset as read after the kill. How many ran twice depends on how far
  // the group's commits trailed at the kill, which a loaded machine stretches; the
  // bound is what ran above those offsets before the kill, plus what was in flight.
  const auto ps = read_processed(dir.file("processed.log"));
  std::map<std::pair<std::string, int>, int> runs;
  for (const auto& p : ps) ++runs[{p.key, p.seq}];
  size_t duplicates = 0, below_commit = 0, uncommitted_at_kill = 0;
  for (size_t i = 0; i < ps.size(); ++i) {
    const auto& p = ps[i];
    const auto c = committed.find(p.partition);
    const int64_t from = c == committed.end() ? 0 : c->second;
    if (i < before_kill && p.offset >= from) ++uncommitted_at_kill;
    if (runs[{p.key, p.seq}] > 1 && i >= before_kill) {
      ++duplicates;
      if (p.offset < from) ++below_commit;
    }
  }
  EXPECT_EQ(below_commit, 0u) << "records below the committed offset ran again";
  EXPECT_LE(duplicates, uncommitted_at_kill + 256) << "256: the dispatcher's budget in flight";
  std::cout << "[ info ] " << before_kill << " processed before kill -9, " << committed_total
            << " committed; " << uncommitted_at_kill << " processed above the commit; "
            << duplicates << " ran again after the restart\n";
}

TEST(KafkaEndToEnd, TwoProcessesShareTheGroupAndTheSurvivorTakesOver) {
  NEED_KAFKA();
  const int keys = 60, batch = 1200;
  TempDir a, b;
  const uint16_t pa = free_port(), pb = free_port();
  FunctionSpec f;
  f.topic = unique("shared");
  const std::string group = unique("g");
  // A dead member is noticed after session.timeout.ms (librdkafka's default is 45 s).
  a.write("sluice.yaml", config(pa, group, f, kFastFailover));
  b.write("sluice.yaml", config(pb, group, f, kFastFailover));
  Engine ea(a.file("sluice.yaml"), a.file("engine.log"));
  Engine eb(b.file("sluice.yaml"), b.file("engine.log"));
  ASSERT_TRUE(ea.wait_ready(pa)) << a.read("engine.log");
  ASSERT_TRUE(eb.wait_ready(pb)) << b.read("engine.log");

  auto all = [&] {
    auto ps = read_processed(a.file("processed.log"));
    auto more = read_processed(b.file("processed.log"));
    ps.insert(ps.end(), more.begin(), more.end());
    return ps;
  };
  int produced = 0;
  // Who reads what: one batch after another until both processes have read a batch
  // and split its partitions between them (the group needs a rebalance or two before
  // the second member gets partitions, and a rebalance during a batch blurs it).
  std::set<int32_t> of_a, of_b;
  auto partitions_since = [](const std::string& file, size_t from) {
    std::set<int32_t> out;
    const auto ps = read_processed(file);
    for (size_t i = from; i < ps.size(); ++i) out.insert(ps[i].partition);
    return out;
  };
  ASSERT_TRUE(eventually(
      [&] {
        const size_t la = lines(a.file("processed.log")).size();
        const size_t lb = lines(b.file("processed.log")).size();
        produce(f.topic, keyed_records(batch, keys, produced));
        produced += batch;
        if (!eventually([&] { return missing(all(), produced, keys) == 0; }, 60s)) return false;
        of_a = partitions_since(a.file("processed.log"), la);
        of_b = partitions_since(b.file("processed.log"), lb);
        std::vector<int32_t> both;
        std::set_intersection(of_a.begin(), of_a.end(), of_b.begin(), of_b.end(),
                              std::back_inserter(both));
        return !of_a.empty() && !of_b.empty() && both.empty() && of_a.size() + of_b.size() == 6;
      },
      120s))
      << a.read("engine.log") << b.read("engine.log");
  const size_t a_before = lines(a.file("processed.log")).size();

  eb.signal(SIGKILL);
  ASSERT_EQ(eb.wait_exit(), 128 + SIGKILL);
  produce(f.topic, keyed_records(batch, keys, produced));
  produced += batch;
  ASSERT_TRUE(eventually([&] { return missing(all(), produced, keys) == 0; }, 120s))
      << missing(all(), produced, keys) << " missing\n" << a.read("engine.log");
  // The survivor read the dead member's partitions.
  const std::set<int32_t> after = partitions_since(a.file("processed.log"), a_before);
  for (int32_t p : of_b) EXPECT_TRUE(after.count(p)) << "partition " << p << " not taken over";
  EXPECT_EQ(after.size(), 6u);
  ea.signal(SIGTERM);
  EXPECT_EQ(ea.wait_exit(), 0) << a.read("engine.log");
}

TEST(KafkaEndToEnd, PoisonRecordIsDeadLetteredIntactAndReplayed) {
  NEED_KAFKA();
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.name = "picky";
  f.topic = unique("poison");
  const std::string dlq = f.topic + ".dlq";
  f.script = R"(read -r d; case "$d" in poison*) [ -f ok ] || { echo "cannot take $d" >&2; exit 1; };; esac; echo "$SLUICE_PARTITION $SLUICE_OFFSET $d" >> processed.log)";
  f.extra = "    retry: { max_attempts: 3, initial: 10ms, max: 20ms }\n"
            "    dead_letter: { broker: kafka, topic: " + dlq + " }\n";
  dir.write("sluice.yaml", config(port, unique("g"), f));
  ASSERT_EQ(run_cli({"validate", "-c", dir.file("sluice.yaml")}).exit_code, 0);
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");

  // The poison record, then more records of the same key (so the same partition).
  produce(f.topic, "kp:poison 0\n", {"-H", "trace=abc", "-H", "tenant=t1"});
  produce(f.topic, "kp:kp 1\nkp:kp 2\nkp:kp 3\n");
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 3; }, 60s))
      << dir.read("engine.log");  // the partition moved on

  // The dead letter as a Kafka consumer sees it: the original record plus string
  // sluice-dlq-* headers.
  std::vector<nlohmann::json> dead;
  ASSERT_TRUE(eventually([&] { return (dead = consume_all(dlq)).size() == 1; }, 60s));
  const auto& r = dead[0];
  EXPECT_EQ(r["key"], "kp");
  EXPECT_EQ(r["payload"], "poison 0");
  std::map<std::string, std::string> h;
  const auto& hs = r["headers"];
  ASSERT_TRUE(hs.is_array()) << r.dump();
  for (size_t i = 0; i + 1 < hs.size(); i += 2) h[hs[i].get<std::string>()] = hs[i + 1].get<std::string>();
  EXPECT_EQ(h["trace"], "abc");
  EXPECT_EQ(h["tenant"], "t1");
  EXPECT_EQ(h["sluice-dlq-function"], "picky");
  EXPECT_EQ(h["sluice-dlq-attempts"], "3");
  EXPECT_EQ(h["sluice-dlq-error-class"], "error");
  EXPECT_EQ(h["sluice-dlq-original-broker"], "kafka");
  EXPECT_EQ(h["sluice-dlq-original-topic"], f.topic);
  EXPECT_EQ(h["sluice-dlq-original-offset"], "0");
  EXPECT_FALSE(h["sluice-dlq-first-failure-time"].empty());
  EXPECT_FALSE(h["sluice-dlq-last-failure-time"].empty());
  for (const auto& [k, v] : h)  // the original headers and sluice's, nothing else
    EXPECT_TRUE(k == "trace" || k == "tenant" || k.rfind("sluice-dlq-", 0) == 0) << k;

  // `sluice dlq list|show|replay` on Kafka.
  auto list = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "--json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto j = nlohmann::json::parse(list.out.substr(0, list.out.find('\n')));
  EXPECT_EQ(j["function"], "picky");
  EXPECT_EQ(j["attempts"], 3);
  EXPECT_EQ(j["original"]["topic"], f.topic);
  const std::string id = j["id"];
  EXPECT_EQ(id, dlq + ":" + h["sluice-dlq-original-partition"] + ":0");
  auto show = run_cli({"dlq", "show", "-c", dir.file("sluice.yaml"), id});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("\"trace\": \"abc\""), std::string::npos) << show.out;
  EXPECT_NE(show.out.find("\"data\": \"poison 0\""), std::string::npos) << show.out;
  auto dry = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--dry-run"});
  ASSERT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("1 dead letter(s) would be replayed"), std::string::npos) << dry.out;

  dir.write("ok", "");
  auto replay = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--id", id});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_NE(replay.out.find("replayed 1 of 1"), std::string::npos) << replay.out;
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 4; }, 60s))
      << dir.read("engine.log");
  const auto ps = read_processed(dir.file("processed.log"));
  EXPECT_EQ(ps.back().key, "poison");
  EXPECT_EQ(ps.back().seq, 0);
  // Replayed with its key: the same partition as the original.
  EXPECT_EQ(std::to_string(ps.back().partition), h["sluice-dlq-original-partition"]);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

// retry.mode topic on Kafka: a failed event goes to `<function>.retry` and runs again
// no earlier than its backoff; the lane it was in moves on meanwhile.
TEST(KafkaEndToEnd, RetryTopicHonoursTheDelayAndFreesTheLane) {
  NEED_KAFKA();
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.name = unique("rt");  // the retry topic is `<function>.retry`: unique per run too
  f.topic = unique("retried");
  f.ordering = "partition";
  // Every attempt writes "TIME ATTEMPT PARTITION OFFSET KEY SEQ" first; "fail ..."
  // fails its first attempt. bash for $EPOCHREALTIME (microseconds, no process).
  f.script = R"(read -r d; echo "$EPOCHREALTIME $SLUICE_ATTEMPT $SLUICE_PARTITION $SLUICE_OFFSET $d" >> processed.log; case "$d" in fail*) [ "$SLUICE_ATTEMPT" -ge 2 ] || exit 1;; esac)";
  f.extra = "    retry: { max_attempts: 3, backoff: fixed, initial: 3s, max: 3s, jitter: none, "
            "mode: topic }\n";
  std::string yaml = config(port, unique("g"), f);
  yaml.replace(yaml.find("[sh, -c,"), 8, "[bash, -c,");
  dir.write("sluice.yaml", yaml);
  auto v = run_cli({"validate", "-c", dir.file("sluice.yaml")});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  const int count = 300, keys = 20;
  produce(f.topic, "kf:fail 0\n" + keyed_records(count, keys));

  struct Line {
    double time = 0;
    int attempt = 0;
    int32_t partition = -1;
    int64_t offset = -1;
    std::string key;
    int seq = -1;
  };
  std::vector<Line> ls;
  ASSERT_TRUE(eventually(
      [&] {
        ls.clear();
        for (const auto& l : lines(dir.file("processed.log"))) {
          std::istringstream in(l);
          Line x;
          in >> x.time >> x.attempt >> x.partition >> x.offset >> x.key >> x.seq;
          ls.push_back(x);
        }
        return ls.size() >= size_t(count) + 2;
      },
      120s))
      << ls.size() << "\n" << dir.read("engine.log");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");

  const Line* first = nullptr;
  const Line* retry = nullptr;
  std::map<std::string, int> next;
  for (const auto& x : ls) {
    if (x.key == "fail") {
      (x.attempt == 1 ? first : retry) = &x;
      continue;
    }
    EXPECT_EQ(x.attempt, 1);
    EXPECT_EQ(x.seq, next[x.key]++) << x.key << ": order of another key changed";
  }
  ASSERT_NE(first, nullptr);
  ASSERT_NE(retry, nullptr);
  EXPECT_EQ(retry->partition, first->partition);  // the origin is restored
  EXPECT_EQ(retry->offset, first->offset);
  EXPECT_GE(retry->time - first->time, 3.0) << "retried early";
  EXPECT_LT(retry->time - first->time, 30.0);
  // The lane moved on: records after the failed one in its partition ran before
  // its retry did.
  size_t before_retry = 0;
  for (const auto& x : ls)
    if (x.key != "fail" && x.partition == first->partition && x.offset > first->offset &&
        x.time < retry->time)
      ++before_retry;
  EXPECT_GT(before_retry, 0u);
  for (const auto& [k, n] : next) EXPECT_EQ(n, count / keys) << k;

  // It went through Kafka: one record in the retry topic, with its state in headers.
  const auto retried = consume_all(f.name + ".retry");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0]["payload"], "fail 0");
  EXPECT_EQ(retried[0]["key"], "kf");
  EXPECT_NE(retried[0].dump().find("sluice-retry-due"), std::string::npos) << retried[0].dump();
}

// Issue 7 against the real broker: a backlog makes the pool grow, the lag drains,
// the pool falls back to zero (min: 0) once idle, and nothing is lost or repeated.
TEST(KafkaEndToEnd, AutoscaledPoolFollowsTheBacklogAndFallsBackToZero) {
  NEED_KAFKA();
  const int count = 1500, keys = 60;
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.topic = unique("scaled");
  f.ordering = "none";
  f.script = std::string("sleep 0.02; ") + kRecord;
  f.extra = "    workers: { min: 0, max: 8, target_lag: 50, idle_after: 2s }\n";
  dir.write("sluice.yaml", config(port, unique("g"), f));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto desired = [&] {
    auto r = HttpClient(port).get("/system/functions");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_array() && !j.empty() ? j[0].value("workers_desired", -1) : -1;
  };
  ASSERT_TRUE(eventually([&] { return desired() == 0; }, 60s)) << dir.read("engine.log");
  produce(f.topic, keyed_records(count, keys));
  int peak = 0;
  ASSERT_TRUE(eventually([&] {
    peak = std::max(peak, desired());
    return peak > 1;
  }, 120s)) << dir.read("engine.log");
  ASSERT_TRUE(eventually(
      [&] { return missing(read_processed(dir.file("processed.log")), count, keys) == 0; }, 300s))
      << missing(read_processed(dir.file("processed.log")), count, keys) << " missing\n"
      << dir.read("engine.log");
  ASSERT_TRUE(eventually([&] { return desired() == 0; }, 120s)) << dir.read("engine.log");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  const auto ps = read_processed(dir.file("processed.log"));
  EXPECT_EQ(ps.size(), unique_records(ps)) << "an event ran twice without a failure";
  EXPECT_EQ(ps.size(), static_cast<size_t>(count));
  EXPECT_NE(dir.read("engine.log").find("[fn rec] workers 0 -> "), std::string::npos);
  std::cout << "[ info ] peak workers_desired " << peak << "\n";
}

TEST(KafkaEndToEnd, LagShowsMessagesAndSecondsBehind) {
  NEED_KAFKA();
  TempDir dir;
  FunctionSpec f;
  f.topic = unique("lag");
  dir.write("sluice.yaml", config(free_port(), unique("g"), f));
  produce(f.topic, keyed_records(60, 6));
  auto r = run_cli({"lag", "-c", dir.file("sluice.yaml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int rows = 0;
  int64_t total = 0;
  for (const auto& row : lag_rows(r.out)) {
    if (row.topic != f.topic) continue;
    ++rows;
    const std::string l = row.topic + " " + row.partition;
    EXPECT_EQ(row.committed, "-") << l;
    total += std::stoll(row.lag);
    if (row.lag != "0") {
      EXPECT_NE(row.secs, "-") << l;  // known: the oldest record was read
    } else {
      EXPECT_EQ(row.secs, "0.0") << l;
    }
  }
  EXPECT_EQ(rows, 6) << r.out;
  EXPECT_EQ(total, 60) << r.out;
}

// `sluice pause` on Kafka: the source is throttled at once, so records produced while
// paused wait in the topic (the group's lag grows) and nothing runs; a kill -9 while
// paused loses none of them, and the restarted engine (not paused: the config does
// not say `paused: true`) processes every record.
TEST(KafkaEndToEnd, PauseHoldsTheTopicAndKillNineWhilePausedLosesNothing) {
  NEED_KAFKA();
  const int first = 200, more = 300, keys = 20;
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.topic = unique("pause");
  f.concurrency = 4;
  dir.write("sluice.yaml", config(port, unique("g"), f, kFastFailover));
  const std::string cfg = dir.file("sluice.yaml");
  auto lag = [&] {  // the group's lag on the topic, summed; -1 unknown
    auto r = run_cli({"lag", "-c", cfg, "-o", "json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array()) return int64_t{-1};
    int64_t sum = 0;
    for (const auto& row : j)
      if (row.value("topic", "") == f.topic && row["lag"].is_number()) sum += row["lag"].get<int64_t>();
    return sum;
  };
  produce(f.topic, keyed_records(first, keys));
  {
    Engine engine(cfg, dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= size_t(first); }, 120s))
        << dir.read("engine.log");
    auto p = run_cli({"pause", "-c", cfg, "rec"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    produce(f.topic, keyed_records(more, keys, first));
    ASSERT_TRUE(eventually([&] { return lag() >= more; }, 60s))
        << lag() << "\n" << dir.read("engine.log");
    EXPECT_EQ(lines(dir.file("processed.log")).size(), size_t(first));
    engine.signal(SIGKILL);
    EXPECT_EQ(engine.wait_exit(), 128 + SIGKILL);
  }
  Engine again(cfg, dir.file("engine.log"));
  ASSERT_TRUE(again.wait_ready(port)) << dir.read("engine.log");
  ASSERT_TRUE(eventually(
      [&] { return missing(read_processed(dir.file("processed.log")), first + more, keys) == 0; }, 120s))
      << missing(read_processed(dir.file("processed.log")), first + more, keys) << " missing\n"
      << dir.read("engine.log");
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait_exit(), 0) << dir.read("engine.log");
}

// A topic nothing subscribes to that holds records (most often a mistyped publish):
// `sluice lag` lists it with its record count when sluice published there (`sluice
// publish` or POST /topics); `--all` also lists one made outside sluice.
TEST(KafkaEndToEnd, LagListsTopicsThatHoldRecordsAndHaveNoSubscriber) {
  NEED_KAFKA();
  TempDir dir;
  FunctionSpec f;
  f.topic = unique("greetings");
  const uint16_t port = free_port();
  dir.write("sluice.yaml", config(port, unique("g"), f));
  const std::string cfg = dir.file("sluice.yaml");
  produce(f.topic, "k:a\nk:b\n");  // subscribed: a lag row, never "(no subscriber)"
  const std::string typo = unique("greetngs"), outside = unique("outside"),
                    via_http = unique("via-http");
  auto pub = run_cli({"publish", "-c", cfg, typo, "x", "--count", "3"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_NE(pub.err.find("warning: no function subscribes to topic '" + typo + "'"),
            std::string::npos) << pub.err;
  EXPECT_NE(pub.err.find("`sluice lag` lists the topic"), std::string::npos) << pub.err;
  produce(outside, "k:1\nk:2\n");  // kcat: sluice never hears of it
  {
    Engine engine(cfg, dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    HttpClient http(port);
    EXPECT_EQ(http.post("/topics/" + via_http, "x").status, 202);
    EXPECT_EQ(http.post("/topics/" + via_http, "y").status, 202);
  }
  std::string rows;
  auto listed = unsubscribed_topics(cfg, {}, &rows);
  EXPECT_EQ(listed[typo], 3) << rows;
  EXPECT_EQ(listed[via_http], 2) << rows;
  EXPECT_FALSE(listed.count(f.topic)) << rows;
  EXPECT_FALSE(listed.count(outside)) << rows;  // not asked for without --all
  listed = unsubscribed_topics(cfg, {"--all"}, &rows);
  EXPECT_EQ(listed[outside], 2) << rows;
  EXPECT_EQ(listed[typo], 3) << rows;
  EXPECT_FALSE(listed.count(f.topic)) << rows;
  EXPECT_FALSE(listed.count("__consumer_offsets")) << rows;
}

TEST(KafkaEndToEnd, BadBrokerConfigIsOneClearErrorAndExitCode2) {
  NEED_KAFKA();
  TempDir dir;
  const uint16_t port = free_port();
  FunctionSpec f;
  f.topic = unique("bad");
  struct Case {
    std::string what, bootstrap, options, expect;
  };
  const std::vector<Case> cases{
      {"unreachable bootstrap", "127.0.0.1:" + std::to_string(free_port()), "",
       "no Kafka broker answered at 127.0.0.1:"},
      {"unknown option", g_bootstrap, R"("no.such.option": "1")", "option 'no.such.option'"},
      {"bad option value", g_bootstrap, R"("fetch.min.bytes": "lots")", "option 'fetch.min.bytes'"},
      {"option sluice manages", g_bootstrap, R"("group.id": "other")", "managed by sluice"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    dir.write("sluice.yaml", config(port, unique("g"), f, c.options, c.bootstrap));
    const auto start = std::chrono::steady_clock::now();
    auto r = run_cli({"run", "-c", dir.file("sluice.yaml")});
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find(c.expect), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("broker 'kafka'"), std::string::npos) << r.err;
    EXPECT_LT(took, 30s);
    // One line on stderr (the start-up log lines go to stdout... or there are none).
    size_t errors = 0;
    std::istringstream in(r.err);
    for (std::string l; std::getline(in, l);) errors += l.find(c.expect) != std::string::npos;
    EXPECT_EQ(errors, 1u) << r.err;
  }
}

}  // namespace
}  // namespace sluice::e2e
