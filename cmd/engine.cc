#include "cmd/engine.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "broker-adapters/http/callback_sink.h"
#include "broker-adapters/http/ingress.h"
#include "broker-adapters/http/metrics_listener.h"
#include "cmd/invoke_api.h"
#include "broker-adapters/registry.h"
#include "core/clock.h"
#include "core/thread_guard.h"
#include "dispatcher/retry_topic.h"
#include "workers/process.h"
#include "workers/registry.h"

namespace sluice {

namespace {

// Events a function may run at once with `workers` workers: exec and inproc run one
// event per worker; a stdio or http worker multiplexes up to `concurrency` events, so
// any live worker allows them all and zero workers hold every event.
uint32_t event_limit(const FunctionConfig& fn, uint32_t workers) {
  if (fn.runtime == RuntimeKind::exec || fn.runtime == RuntimeKind::inproc)
    return std::min(workers, fn.concurrency);
  return workers > 0 ? fn.concurrency : 0;
}

}  // namespace

std::set<std::string> internal_topics(const Config& cfg) {
  std::set<std::string> out;
  for (const auto& fn : cfg.functions) {
    out.insert(retry::topic_for(fn.name));
    out.insert(fn.dead_letter.topic);
  }
  return out;
}

Engine::Engine(const Config& cfg) : cfg_(cfg) {}

Engine::~Engine() { shutdown(); }

Result<void> Engine::start() {
  auto keys = seal::Keyring::load(cfg_.engine.control_key_file, /*create=*/true);
  if (!keys) return keys.error();  // "control key file PATH: why"
  control_keys_.emplace(std::move(keys).value());
  for (const auto& b : cfg_.brokers) {
    auto br = make_broker(b);
    if (!br) return br.error();
    metrics_.add_probe(b.name, br.value()->probe());  // sluice_broker_errors_total
    brokers_.emplace(b.name, std::move(br).value());
  }
  DispatcherOptions dopts;
  dopts.control_keys = &*control_keys_;
  dispatcher_ = std::make_unique<Dispatcher>(metrics_, dopts);
  if (cfg_.http.enabled)
    callbacks_ = std::make_unique<http::CallbackSink>(
        &metrics_, http::CallbackSink::Options::from(cfg_.http));
  for (const auto& fn : cfg_.functions) {
    auto rt = workers::make_runtime(fn, cfg_.base_dir);
    if (!rt) return rt.error();
    FunctionBinding b;
    b.config = &fn;
    b.runtime = rt.value().get();
    b.dead_letter_sink = &brokers_.at(fn.dead_letter.broker)->sink();
    if (fn.output) b.output_sink = &brokers_.at(fn.output->broker)->sink();
    b.callback_sink = callbacks_.get();
    if (fn.retry.mode == RetryMode::topic && !fn.subscribe.empty()) {
      // Retries leave the lane: on JetStream the server redelivers after nak(delay);
      // elsewhere the event goes to `<function>.retry` on the first subscription's broker.
      // (retry.mode topic on core NATS is refused by the config loader.)
      const BrokerConfig& bc = *cfg_.broker(fn.subscribe.front().broker);
      if (bc.kind != BrokerKind::nats) {
        b.retry_sink = &brokers_.at(bc.name)->sink();
        b.retry_topic = retry::topic_for(fn.name);
      }
    }
    dispatcher_->add_function(b);
    runtimes_.emplace(fn.name, std::move(rt).value());
    auto pool = std::make_unique<Pool>();
    pool->fn = &fn;
    pool->desired = fn.concurrency;
    if (fn.workers.autoscale) {
      auto sc = scaling::ScalerConfig::from(fn.workers, fn.concurrency);
      if (!sc)
        return Error{Errc::invalid_argument, "function '" + fn.name + "': workers: " + sc.error().message};
      pool->scaler = std::make_unique<scaling::Autoscaler>(sc.value(), Clock::system());
      pool->meter = std::make_unique<scaling::RateMeter>(Clock::system());
      pool->desired = pool->scaler->desired();  // `min` until the first tick
      dispatcher_->set_limit(fn.name, event_limit(fn, pool->desired));
    }
    pools_.emplace(fn.name, std::move(pool));
  }
  // One source per (broker, topic, consumer group): see consumer_group() for who
  // shares a source (fan-out) and who gets its own.
  std::map<std::tuple<std::string, std::string, std::string>, Source*> by_topic;
  std::map<std::tuple<std::string, std::string, std::string>, SourceOptions> options;
  for (const auto& fn : cfg_.functions) {
    for (const auto& sub : fn.subscribe) {
      auto& o = options[{sub.broker, sub.topic, consumer_group(*cfg_.broker(sub.broker), fn.name)}];
      o.max_in_flight = std::max<uint32_t>(o.max_in_flight, static_cast<uint32_t>(fn.concurrency));
      o.max_run_time = std::max(o.max_run_time, std::chrono::duration_cast<std::chrono::milliseconds>(fn.timeout));
    }
  }
  for (const auto& fn : cfg_.functions) {
    for (const auto& sub : fn.subscribe) {
      const std::string group = consumer_group(*cfg_.broker(sub.broker), fn.name);
      auto key = std::tuple{sub.broker, sub.topic, group};
      auto it = by_topic.find(key);
      if (it == by_topic.end()) {
        auto src = brokers_.at(sub.broker)->make_source(sub.topic, group, options.at(key));
        if (!src) return src.error();
        sources_.push_back(std::move(src).value());
        it = by_topic.emplace(key, sources_.back().get()).first;
      }
      dispatcher_->add_route(*it->second, fn.name, sub.ordering);
      pools_.at(fn.name)->sources.emplace_back(it->second, sub.ordering);
    }
  }
  // Retry topics: one source per topic-mode function, feeding only that function.
  for (const auto& fn : cfg_.functions) {
    if (fn.retry.mode != RetryMode::topic || fn.subscribe.empty()) continue;
    const BrokerConfig& bc = *cfg_.broker(fn.subscribe.front().broker);
    if (bc.kind == BrokerKind::nats) continue;
    SourceOptions o{static_cast<uint32_t>(fn.concurrency),
                    std::chrono::duration_cast<std::chrono::milliseconds>(fn.timeout)};
    auto src = brokers_.at(bc.name)->make_source(retry::topic_for(fn.name),
                                                 consumer_group(bc, fn.name), o);
    if (!src) return src.error();
    sources_.push_back(std::move(src).value());
    dispatcher_->add_route(*sources_.back(), fn.name, Ordering::none, RouteRole::retry);
    pools_.at(fn.name)->sources.emplace_back(sources_.back().get(), Ordering::none);
  }
  // The dispatcher's loop runs first: stdio runtimes read their workers on it
  // (Runtime::share_loop), and shutdown() stops the runtimes before it.
  dispatcher_->start();
  for (auto& [name, rt] : runtimes_) {
    // A fixed pool keeps the runtime's own size; an autoscaled one starts at `min`.
    if (pools_.at(name)->scaler) rt->resize(pools_.at(name)->desired);
    if (auto r = rt->start(); !r)
      return Error{r.error().code, "function '" + name + "': " + r.error().message};
  }
  for (auto& s : sources_) {
    if (auto r = s->start(*dispatcher_); !r) return r.error();
  }
  if (cfg_.metrics.enabled) {
    metrics_listener_ = std::make_unique<http::MetricsListener>(cfg_.metrics, metrics_);
    if (auto r = metrics_listener_->start(); !r) return r.error();
  }
  if (cfg_.http.enabled) {
    std::map<std::string, Sink*> sinks;
    for (auto& [name, b] : brokers_) sinks.emplace(name, &b->sink());
    http::HttpServer::Options http_opts;
    http_opts.metrics = &metrics_;
    http_ = std::make_unique<http::HttpIngress>(
        cfg_.http, sinks, cfg_.brokers.front().name, [this] { return ready(); },
        [this] { return metrics_.text(); }, http_opts);
    http_->reserve_topics(internal_topics(cfg_));
    register_system_routes();
    invoke_api_ = std::make_unique<InvokeApi>(cfg_, runtimes_, brokers_, metrics_);
    invoke_api_->set_control_keys(&*control_keys_);
    invoke_api_->register_routes(http_->server());
    if (auto r = http_->start(); !r) return r.error();
  }
  lag_thread_ = std::thread([this] { run_guarded("lag", [this] { lag_loop(); }); });
  ready_ = true;
  return ok();
}

bool Engine::ready() const {
  if (!ready_.load()) return false;
  // Not ready while a broker that stores events cannot write (the local queue's disk
  // is full): a load balancer then sends publishers elsewhere.
  for (const auto& [name, b] : brokers_) {
    auto h = b->write_health();
    if (h && !h->writable) return false;
  }
  return true;
}

uint16_t Engine::http_port() const { return http_ ? http_->port() : 0; }

void Engine::register_system_routes() {
  http_->server().route(
      http::Verb::get, "/system/functions", [this](http::Request&&, http::Responder res) {
        nlohmann::json out = nlohmann::json::array();
        auto stats = dispatcher_->stats();
        for (const auto& fn : cfg_.functions) {
          nlohmann::json subs = nlohmann::json::array();
          for (const auto& s : fn.subscribe)
            subs.push_back({{"broker", s.broker}, {"topic", s.topic},
                            {"ordering", to_string(s.ordering)}});
          size_t held = 0, running = 0;
          for (const auto& st : stats)
            if (st.name == fn.name) {
              held = st.held;
              running = st.running;
            }
          auto ps = runtimes_.at(fn.name)->stats();
          out.push_back({{"name", fn.name},
                         {"runtime", to_string(fn.runtime)},
                         {"subscriptions", subs},
                         {"replicas", ps.workers},
                         {"workers", ps.workers},
                         {"workers_desired", pools_.at(fn.name)->desired.load()},
                         {"autoscaled", pools_.at(fn.name)->scaler != nullptr},
                         {"concurrency", fn.concurrency},
                         {"inflight", held},
                         {"running", running}});
        }
        res(http::json_response(http::Status::ok, out.dump()));
      });
}

void Engine::lag_loop() {
  std::unique_lock lk(lag_mu_);
  while (!lag_stop_) {
    lk.unlock();
    // Each source is asked once per tick; its answer feeds the lag gauges and the
    // autoscaler of every function it serves.
    std::map<Source*, Result<std::vector<PartitionLag>>> lags;
    for (auto& s : sources_) {
      auto lag = s->lag();
      if (!lag) {
        spdlog::warn("lag of {}/{} unknown: {}", s->broker(), s->topic(), lag.error().message);
        metrics_.errors.Add({{"component", "lag"}, {"kind", to_string(lag.error().code)}})
            .Increment();
      } else {
        for (const auto& p : lag.value()) {
          prometheus::Labels l{{"broker", p.broker},
                               {"topic", p.topic},
                               {"partition", std::to_string(p.partition)},
                               {"group", p.group}};
          metrics_.consumer_lag.Add(l).Set(static_cast<double>(p.lag));
          if (p.lag_seconds) metrics_.consumer_lag_seconds.Add(l).Set(*p.lag_seconds);
        }
      }
      lags.emplace(s.get(), std::move(lag));
    }
    scale(lags, dispatcher_->stats());
    for (auto& [name, b] : brokers_) {
      auto st = b->connection_state();
      if (!st) continue;
      metrics_.broker_connected.Add({{"broker", name}}).Set(st->connected ? 1 : 0);
      auto& seen = reconnects_seen_[name];
      auto& counter = metrics_.broker_reconnects.Add({{"broker", name}});
      if (st->reconnects > seen) counter.Increment(static_cast<double>(st->reconnects - seen));
      seen = st->reconnects;
    }
    sync_worker_counters();
    for (auto& [name, b] : brokers_) {
      auto h = b->write_health();
      if (!h) continue;
      metrics_.local_queue_writable.Add({{"broker", name}}).Set(h->writable ? 1 : 0);
      auto& seen = write_failures_seen_[name];
      auto& counter = metrics_.local_queue_write_failures.Add({{"broker", name}});
      if (h->failed_writes > seen) counter.Increment(static_cast<double>(h->failed_writes - seen));
      seen = h->failed_writes;
    }
    lk.lock();
    lag_cv_.wait_for(lk, std::chrono::seconds(2), [this] { return lag_stop_; });
  }
}

// The function processes' counters (workers/) into the metrics: bytes of output
// dropped over their caps, per function, and starts delayed for want of resources.
void Engine::sync_worker_counters() {
  auto add = [](prometheus::Counter& c, uint64_t now, uint64_t& seen) {
    if (now > seen) c.Increment(static_cast<double>(now - seen));
    seen = now;
  };
  for (auto& [name, rt] : runtimes_) {
    const PoolStats st = rt->stats();
    PoolStats& seen = worker_output_seen_[name];
    add(metrics_.worker_output_dropped.Add({{"function", name}, {"stream", "stderr"}}),
        st.stderr_dropped_bytes, seen.stderr_dropped_bytes);
    add(metrics_.worker_output_dropped.Add({{"function", name}, {"stream", "log"}}),
        st.log_dropped_bytes, seen.log_dropped_bytes);
  }
  const workers::ExhaustionCounts ex = workers::exhaustion_counts();
  const std::array<std::pair<const char*, uint64_t>, 4> kinds{
      {{"emfile", ex.emfile}, {"enfile", ex.enfile}, {"eagain", ex.eagain}, {"enomem", ex.enomem}}};
  for (size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i].second > exhaustion_seen_[i])
      add(metrics_.errors.Add({{"component", "spawn"}, {"kind", kinds[i].first}}),
          kinds[i].second, exhaustion_seen_[i]);
}

void Engine::scale(const std::map<Source*, Result<std::vector<PartitionLag>>>& lags,
                   const std::vector<FunctionStats>& stats) {
  for (auto& [name, pool] : pools_) {
    Runtime& rt = *runtimes_.at(name);
    const FunctionStats* st = nullptr;
    for (const auto& x : stats)
      if (x.name == name) st = &x;
    if (pool->scaler && st) {
      scaling::Observation o;
      for (auto [src, ordering] : pool->sources) {
        o.sources.push_back(scaling::reading_of(lags.at(src), ordering));
        if (ordering == Ordering::key) o.sources.back().key_lanes = static_cast<uint32_t>(st->lanes);
      }
      o.inflight = st->held;
      o.busy = static_cast<double>(st->running);
      o.workers = pool->desired;  // the pool's size (busy or idle), as last applied
      o.throughput = pool->meter->update(st->finished);
      const auto d = pool->scaler->tick(o);
      if (d.desired != pool->desired)
        spdlog::info("[fn {}] workers {} -> {}: {}", name, pool->desired.load(), d.desired, d.why());
      else if (!d.stuck.empty() || d.held_unknown)
        spdlog::warn("[fn {}] {}", name, d.why());
      pool->desired = d.desired;
      dispatcher_->set_limit(name, event_limit(*pool->fn, d.desired));
      rt.resize(d.desired);
    }
    metrics_.workers_desired.Add({{"function", name}}).Set(pool->desired);
    metrics_.workers.Add({{"function", name}}).Set(static_cast<double>(rt.stats().workers));
  }
}

bool Engine::shutdown() {
  if (!dispatcher_) return true;
  ready_ = false;
  {
    std::lock_guard lk(lag_mu_);
    lag_stop_ = true;
  }
  lag_cv_.notify_all();
  if (lag_thread_.joinable()) lag_thread_.join();
  // 1. Stop intake: HTTP first (its publishes complete through the sinks), then sources.
  if (http_) http_->stop();
  for (auto& s : sources_) s->stop();
  spdlog::debug("shutdown: intake stopped");
  // 2. Let in-flight work finish (retry-topic events not yet due are left for later).
  dispatcher_->abandon_waiting_retries();
  bool drained = dispatcher_->drain(cfg_.engine.drain_timeout);
  if (!drained)
    spdlog::warn("drain deadline ({} ms) passed with {} events in flight; they were not "
                 "committed and will be delivered again",
                 cfg_.engine.drain_timeout.count(), dispatcher_->held());
  // 3. Stop workers (kills what still runs), then the dispatcher.
  spdlog::debug("shutdown: drained={}", drained);
  for (auto& [name, rt] : runtimes_) rt->stop(std::chrono::seconds(2));
  spdlog::debug("shutdown: runtimes stopped");
  dispatcher_->stop();
  // Aborts every callback attempt at once (a hung receiver waits no longer than the
  // drain above); undelivered callbacks leave their events uncommitted, so they run
  // and call back again after a restart.
  if (callbacks_) callbacks_->stop();
  // 4. Make the finished prefix durable, then close brokers.
  for (auto& s : sources_) {
    if (auto r = s->flush_commits(); !r)
      spdlog::error("final commit on {}/{} failed: {}", s->broker(), s->topic(),
                    r.error().message);
  }
  sources_.clear();
  spdlog::debug("shutdown: commits flushed");
  for (auto& [name, b] : brokers_) b->stop();
  spdlog::debug("shutdown: brokers stopped");
  if (metrics_listener_) metrics_listener_->stop();
  dispatcher_.reset();
  runtimes_.clear();
  http_.reset();
  metrics_listener_.reset();
  invoke_api_.reset();
  callbacks_.reset();
  brokers_.clear();
  return drained;
}

}  // namespace sluice
