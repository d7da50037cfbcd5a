// `sluice run`: the engine in the foreground until SIGTERM/SIGINT.
#include <fmt/core.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <iostream>
#include <thread>
#include <set>
#include <vector>

#include "broker-adapters/local/engine_lock.h"
#include "broker-adapters/registry.h"

#include "cmd/cli.h"
#include "cmd/engine.h"
#include "cmd/engine_state.h"
#include "core/fd_limit.h"

namespace sluice::cmd {

int run_engine(const std::string& path) {
  Config cfg = load_or_exit(path);
  // Idle HTTP connections, worker pipes and broker sockets all take fds: use every
  // one the hard limit allows (http.max_connections is derived from it).
  raise_fd_limit();
  preflight_or_exit(cfg, path);
  // One consuming engine per local database (engine_lock.h): held until exit.
  std::vector<local::EngineLock> locks;
  std::set<std::string> locked;
  for (const auto& b : cfg.brokers) {
    if (!brokers::broker_capabilities(b).own_database || !locked.insert(b.local().path).second) continue;
    auto lock = local::EngineLock::acquire(b.local().path);
    if (!lock) throw Exit{kFailure, lock.error().message};
    locks.push_back(std::move(lock).value());
  }
  // Block the stop signals in every thread; this one waits for them with sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  Engine engine(cfg);
  if (auto r = engine.start(); !r) {
    engine.shutdown();
    throw Exit{r.error().code == Errc::invalid_argument ? kUsage : kFailure, r.error().message};
  }
  std::string subs;
  for (const auto& f : cfg.functions)
    for (const auto& s : f.subscribe) subs += fmt::format(" {}<-{}/{}", f.name, s.broker, s.topic);
  spdlog::info("sluice is running: {} function(s):{}", cfg.functions.size(), subs);
  if (cfg.http.enabled) spdlog::info("HTTP API on {} (port {})", cfg.http.listen, engine.http_port());
  if (cfg.metrics.enabled)
    spdlog::info("metrics on {} (port {})", cfg.metrics.listen, engine.metrics_port());
  // The real ports (listen: ...:0 picks one), for the CLI verbs (engine_state.h).
  if (auto w = write_engine_state(cfg, engine.http_port(), engine.metrics_port()); !w)
    spdlog::warn("{}: `sluice` verbs need --engine URL to find this engine", w.error().message);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  const char* name = sig == SIGINT ? "SIGINT" : "SIGTERM";
  spdlog::info("{} received: draining (up to {} ms; a second signal stops at once)", name,
               cfg.engine.drain_timeout.count());
  // A second signal while draining stops at once, saying so. The signals stay
  // blocked in every thread; this one takes them.
  std::thread([stop_signals] {
    int again = 0;
    sigwait(&stop_signals, &again);
    spdlog::warn("second {}: exiting now without finishing the drain; events in flight "
                 "are delivered again after a restart",
                 again == SIGINT ? "SIGINT" : "SIGTERM");
    spdlog::default_logger()->flush();
    std::_Exit(kInterrupted);
  }).detach();
  const bool clean = engine.shutdown();
  remove_engine_state(cfg);
  if (!clean) {
    spdlog::warn("stopped, but the drain did not finish within {} ms: unfinished events are "
                 "delivered again after a restart (exit {})",
                 cfg.engine.drain_timeout.count(), kDrainIncomplete);
    return kDrainIncomplete;
  }
  spdlog::info("stopped cleanly");
  return kOk;
}

}  // namespace sluice::cmd
