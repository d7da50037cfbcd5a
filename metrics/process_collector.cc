#include "metrics/process_collector.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace sluice::metrics {

namespace {

// A whole small /proc file; nullopt when it cannot be read. /proc/self/stat is one
// line well under 1 KiB, /proc/stat a few KiB per CPU: 1 MiB bounds both.
std::optional<std::string> read_small_file(const char* path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::string out;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<size_t>(in.gcount()));
    if (out.size() > (1u << 20)) return std::nullopt;
  }
  return out;
}

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Entries of /proc/self/fd, less the descriptor opendir() holds while listing.
std::optional<double> open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return std::nullopt;
  long n = 0;
  while (dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return static_cast<double>(n - 1);
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric m;
  if (type == prometheus::MetricType::Counter)
    m.counter.value = value;
  else
    m.gauge.value = value;
  return {std::move(name), std::move(help), type, {std::move(m)}};
}

double clock_ticks() {
  static const long t = ::sysconf(_SC_CLK_TCK);
  return t > 0 ? static_cast<double>(t) : 100.0;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view line) {
  const auto close = line.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  // Fields 3.. follow ") ": field 3 (state) is index 0 here.
  std::vector<std::string_view> f;
  size_t i = close + 1;
  while (i < line.size() && f.size() < 22) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\n')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\n') ++j;
    if (j > i) f.push_back(line.substr(i, j - i));
    i = j;
  }
  if (f.size() < 22) return std::nullopt;
  ProcStat s;
  auto field = [&](int number) { return f[static_cast<size_t>(number - 3)]; };
  if (!parse_number(field(14), s.utime_ticks) || !parse_number(field(15), s.stime_ticks) ||
      !parse_number(field(22), s.start_ticks) || !parse_number(field(23), s.vsize_bytes) ||
      !parse_number(field(24), s.rss_pages))
    return std::nullopt;
  return s;
}

std::optional<long long> parse_boot_time(std::string_view text) {
  std::istringstream in{std::string(text)};
  for (std::string l; std::getline(in, l);) {
    if (l.rfind("btime ", 0) != 0) continue;
    long long v = 0;
    if (parse_number(std::string_view(l).substr(6), v)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

ProcessCollector::ProcessCollector() {
  auto stat = read_small_file("/proc/self/stat");
  auto boot = read_small_file("/proc/stat");
  auto s = stat ? parse_proc_stat(*stat) : std::nullopt;
  auto b = boot ? parse_boot_time(*boot) : std::nullopt;
  if (s && b)
    start_time_seconds_ = static_cast<double>(*b) + static_cast<double>(s->start_ticks) / clock_ticks();
}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> out;
  auto text = read_small_file("/proc/self/stat");
  if (auto s = text ? parse_proc_stat(*text) : std::nullopt) {
    static const long page = ::sysconf(_SC_PAGESIZE);
    out.push_back(family("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                         MetricType::Counter,
                         static_cast<double>(s->utime_ticks + s->stime_ticks) / clock_ticks()));
    out.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                         MetricType::Gauge, static_cast<double>(s->rss_pages) * static_cast<double>(page)));
    out.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         MetricType::Gauge, static_cast<double>(s->vsize_bytes)));
  }
  if (auto n = open_fds())
    out.push_back(family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, *n));
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0)
    out.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                         MetricType::Gauge, static_cast<double>(rl.rlim_cur)));
  if (start_time_seconds_)
    out.push_back(family("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                         *start_time_seconds_));
  return out;
}

}  // namespace sluice::metrics
