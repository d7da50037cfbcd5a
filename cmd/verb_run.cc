// `sluice run`: the engine in the foreground until SIGTERM/SIGINT.
#include <fmt/core.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <iostream>
#include <set>
#include <vector>

#include "broker-adapters/local/engine_lock.h"

#include "cmd/cli.h"
#include "cmd/engine.h"
#include "core/fd_limit.h"

namespace sluice::cli {

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
    if (b.kind() != BrokerKind::local || !locked.insert(b.local().path).second) continue;
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
  if (cfg.metrics.enabled) spdlog::info("metrics on http://{}/metrics", cfg.metrics.listen);

  int sig = 0;
  sigwait(&stop_signals, &sig);
  spdlog::info("{} received: draining (up to {} ms)", sig == SIGINT ? "SIGINT" : "SIGTERM",
               cfg.engine.drain_timeout.count());
  // A second signal while draining stops at once (the default action).
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  bool clean = engine.shutdown();
  spdlog::info("stopped{}", clean ? " cleanly" : " (some events will be delivered again)");
  return kOk;
}

}  // namespace sluice::cli
