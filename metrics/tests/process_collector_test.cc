#include "metrics/process_collector.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>

#include "metrics/metrics.h"
#include "tests/support/support.h"

namespace sluice::metrics::testing {
namespace {

using testsupport::eventually;

// The value of each process_* family of one collection.
std::map<std::string, double> collect() {
  std::map<std::string, double> out;
  for (const auto& f : ProcessCollector().Collect()) {
    EXPECT_EQ(f.metric.size(), 1u) << f.name;
    if (f.metric.empty()) continue;
    out[f.name] = f.type == prometheus::MetricType::Counter ? f.metric[0].counter.value
                                                            : f.metric[0].gauge.value;
  }
  return out;
}

// proc(5) numbers the fields from 1; field n of this line holds n * 10 from field 3 on.
std::string stat_line(const std::string& comm) {
  std::string s = "4242 (" + comm + ") S";
  for (int n = 4; n <= 52; ++n) s += " " + std::to_string(n * 10);
  return s + "\n";
}

TEST(ProcStat, ReadsTheFieldsAfterTheLastParenthesis) {
  for (const std::string comm : {"sluice", "a b) (c", "x) S 1 2 3 (y"}) {
    auto s = parse_proc_stat(stat_line(comm));
    ASSERT_TRUE(s) << comm;
    EXPECT_EQ(s->utime_ticks, 140u) << comm;
    EXPECT_EQ(s->stime_ticks, 150u) << comm;
    EXPECT_EQ(s->start_ticks, 220u) << comm;
    EXPECT_EQ(s->vsize_bytes, 230u) << comm;
    EXPECT_EQ(s->rss_pages, 240) << comm;
  }
}

TEST(ProcStat, RefusesWhatIsNotAStatLine) {
  EXPECT_FALSE(parse_proc_stat(""));
  EXPECT_FALSE(parse_proc_stat("4242 sluice S 1 2 3"));           // no command in parentheses
  EXPECT_FALSE(parse_proc_stat("4242 (sluice) S 1 2 3 4 5 6 7"));  // cut short
  std::string bad = stat_line("sluice");
  bad.replace(bad.find(" 140 "), 5, " x40 ");  // utime not a number
  EXPECT_FALSE(parse_proc_stat(bad));
}

TEST(ProcStat, BootTimeFromProcStat) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000);
  EXPECT_FALSE(parse_boot_time("cpu  1 2 3\n"));
  EXPECT_FALSE(parse_boot_time("btime soon\n"));
}

TEST(ProcessCollector, ExportsTheStandardProcessMetrics) {
  auto m = collect();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"})
    EXPECT_TRUE(m.count(name)) << name;
  EXPECT_GT(m["process_resident_memory_bytes"], 1024.0 * 1024);  // a test binary is > 1 MiB
  EXPECT_GE(m["process_virtual_memory_bytes"], m["process_resident_memory_bytes"]);
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  EXPECT_EQ(m["process_max_fds"], static_cast<double>(rl.rlim_cur));
  // Started at most a few minutes ago (this test binary), not in the future.
  const double now = std::chrono::duration<double>(
                         std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(m["process_start_time_seconds"], now + 1);
  EXPECT_GT(m["process_start_time_seconds"], now - 600);
}

TEST(ProcessCollector, CpuSecondsGrowWithWork) {
  const double before = collect()["process_cpu_seconds_total"];
  volatile unsigned long sink = 0;
  EXPECT_TRUE(eventually([&] {
    for (unsigned long i = 0; i < 5'000'000; ++i) sink = sink + i;
    return collect()["process_cpu_seconds_total"] > before;
  }));
}

TEST(ProcessCollector, OpenFdsFollowOpenFiles) {
  const double before = collect()["process_open_fds"];
  EXPECT_GE(before, 3);  // stdin, stdout, stderr at least
  int fds[3];
  for (int& fd : fds) ASSERT_GE(fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC), 0);
  EXPECT_EQ(collect()["process_open_fds"], before + 3);
  for (int fd : fds) ::close(fd);
  EXPECT_EQ(collect()["process_open_fds"], before);
}

TEST(ProcessCollector, MetricsTextCarriesThem) {
  Metrics metrics;
  const std::string text = metrics.text();
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE process_open_fds gauge\nprocess_open_fds "), std::string::npos);
  EXPECT_NE(text.find("\nprocess_start_time_seconds "), std::string::npos);
  EXPECT_NE(text.find("\nsluice_build_info{"), std::string::npos)
      << "the registry's own families are still there";
}

}  // namespace
}  // namespace sluice::metrics::testing
