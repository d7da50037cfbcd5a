// The standard process_* metrics of the Prometheus client conventions (the names and
// meanings client_golang and client_python export), read from /proc at each scrape:
//
//   process_cpu_seconds_total      user + system CPU time       /proc/self/stat
//   process_resident_memory_bytes  resident set size            /proc/self/stat
//   process_virtual_memory_bytes   virtual memory size          /proc/self/stat
//   process_open_fds               open file descriptors        /proc/self/fd
//   process_max_fds                RLIMIT_NOFILE (soft)         getrlimit
//   process_start_time_seconds     start, seconds since epoch   /proc/self/stat + /proc/stat
//
// prometheus-cpp 1.0 has no process collector; Metrics::text() appends these families
// to the registry's. A file that cannot be read leaves its metrics out of that scrape
// (never an error): on a system without /proc only process_max_fds remains.
// Stateless apart from the start time read once; Collect() is safe from any thread.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <string_view>
#include <vector>

namespace sluice::metrics {

// The fields of /proc/<pid>/stat that the metrics use (proc(5): utime 14, stime 15,
// starttime 22, vsize 23, rss 24; clock ticks and pages as the kernel writes them).
struct ProcStat {
  unsigned long long utime_ticks = 0;
  unsigned long long stime_ticks = 0;
  unsigned long long start_ticks = 0;  // after boot
  unsigned long long vsize_bytes = 0;
  long long rss_pages = 0;
};

// Parses one /proc/<pid>/stat line; nullopt when it is not one. The command name
// (field 2) may hold spaces and parentheses: the fields are counted after its last ')'.
std::optional<ProcStat> parse_proc_stat(std::string_view line);

// The `btime` line of /proc/stat (boot time, seconds since the epoch).
std::optional<long long> parse_boot_time(std::string_view proc_stat);

class ProcessCollector final : public prometheus::Collectable {
 public:
  ProcessCollector();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::optional<double> start_time_seconds_;
};

}  // namespace sluice::metrics
