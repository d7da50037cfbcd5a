// Preflight: what `sluice run` would refuse at start, checked without starting
// anything — the topology plan's errors (topology/plan.h: the retry layout, broker
// settings the broker would refuse) and what the config text alone does not show:
// files, programs and libraries on this machine. `validate` prints these as config
// errors (exit 2) and `run` refuses to start on them, so the two agree. Also names
// what neither can know in advance (brokers reachable, ports free), for validate's
// last line.
//
// Threads: pure functions of the Config and the file system; any thread.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace sluice::cmd {

struct PreflightReport {
  std::vector<ConfigError> errors;  // with the config's file, field path and line
  std::vector<std::string> not_checked;  // e.g. "kafka broker 'k' reachable"
};

PreflightReport preflight(const Config& c);

}  // namespace sluice::cmd
