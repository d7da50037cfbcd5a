#include "cmd/engine.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "api/callbacks.h"
#include "api/http_api.h"
#include "api/pause.h"
#include "api/system.h"
#include "broker-adapters/http/callback_sink.h"
#include "broker-adapters/http/metrics_listener.h"
#include "broker-adapters/registry.h"
#include "cmd/remembered_topics.h"
#include "metrics/counted_sink.h"
#include "topology/plan.h"
#include "workers/registry.h"

namespace sluice::cmd {

namespace {

// POST /topics answers 404 for a topic a local broker does not know (topology/plan.h);
// Kafka and NATS publish it, and the name is remembered for `sluice lag`.
api::TopicRoutes::UnknownTopic unknown_topic_check(const Config& cfg) {
  std::map<std::string, topology::KnownTopics> known;
  for (const BrokerConfig& b : cfg.brokers) known.emplace(b.name, topology::known_topics(cfg, b.name));
  auto remembered = std::make_shared<RememberedTopics>(cfg);  // std::function copies the check
  return [known = std::move(known), remembered](
             const std::string& broker, const std::string& topic) -> std::optional<std::string> {
    auto it = known.find(broker);
    if (it == known.end() || it->second.knows(topic)) return std::nullopt;
    if (it->second.refuses())  // the "did you mean" costs an edit distance per known topic
      return *it->second.unknown(topic) + "; " + topology::declare_topic_hint(broker);
    if (auto r = remembered->remember(broker, topic); !r)
      spdlog::warn("topic {} of broker {} not remembered for `sluice lag`: {}", topic, broker,
                   r.error().message);
    return std::nullopt;
  };
}

}  // namespace

Engine::Engine(const Config& cfg) : cfg_(cfg) {}

Engine::~Engine() { shutdown(); }

Result<void> Engine::start() {
  auto keys = seal::Keyring::load(cfg_.engine.control_key_file, /*create=*/true);
  if (!keys) return keys.error();  // "control key file PATH: why"
  control_keys_.emplace(std::move(keys).value());
  // What to open and how it is wired: the plan `validate` checks too.
  auto planned = topology::plan(cfg_);
  if (!planned.plan) return Error{Errc::invalid_argument, planned.errors.front().to_string()};
  const topology::Plan& plan = *planned.plan;
  for (const auto& b : cfg_.brokers) {
    auto br = brokers::make_broker(b);
    if (!br) return br.error();
    metrics_.add_probe(b.name, br.value()->probe());  // sluice_broker_errors_total
    brokers_.emplace(b.name, std::move(br).value());
  }
  dispatcher::DispatcherOptions dopts;
  dopts.control_keys = &*control_keys_;
  dispatcher_ = std::make_unique<dispatcher::Dispatcher>(metrics_, dopts);
  lag_loop_ = std::make_unique<scaling::LagLoop>(metrics_, *dispatcher_);
  for (auto& [name, b] : brokers_) lag_loop_->add_broker(name, *b);
  if (cfg_.http.enabled)
    callbacks_ = std::make_unique<http::CallbackSink>(
        &metrics_, http::CallbackSink::Options::from(cfg_.http));
  callback_hook_ = std::make_unique<api::Callbacks>(callbacks_.get(), *control_keys_);
  for (size_t i = 0; i < cfg_.functions.size(); ++i) {
    const FunctionConfig& fn = cfg_.functions[i];
    const topology::FunctionPlan& fp = plan.functions[i];
    auto rt = workers::make_runtime(fn, cfg_.base_dir);
    if (!rt) return rt.error();
    dispatcher::FunctionBinding b;
    b.config = &fn;
    b.runtime = rt.value().get();
    b.dead_letter_sink = &brokers_.at(fp.dead_letter.broker)->sink();
    if (fp.output) b.output_sink = &brokers_.at(fp.output->broker)->sink();
    b.results = callback_hook_.get();
    if (fp.retry) {
      b.retry_sink = &brokers_.at(fp.retry->broker)->sink();
      b.retry_topic = fp.retry->topic;
    }
    dispatcher_->add_function(b);
    Runtime& runtime = *runtimes_.emplace(fn.name, std::move(rt).value()).first->second;
    SLUICE_TRY(lag_loop_->add_function(fn, runtime, workers::runtime_info(fn).events_per_worker));
  }
  for (const topology::SourcePlan& sp : plan.sources) {
    auto src = brokers_.at(sp.broker)->make_source(sp.topic, sp.group, sp.options);
    if (!src) return src.error();
    sources_.push_back(std::move(src).value());
  }
  for (const topology::RoutePlan& r : plan.routes) {
    Source* src = sources_.at(r.source).get();
    dispatcher_->add_route(*src, r.function, r.ordering, r.role, r.retry, r.filter);
    lag_loop_->add_route(*src, r.function, r.ordering);
  }
  // The dispatcher's loop runs first: stdio runtimes read their workers on it
  // (Runtime::share_loop), and shutdown() stops the runtimes before it.
  dispatcher_->start();
  for (auto& [name, rt] : runtimes_) {
    // A fixed pool keeps the runtime's own size; an autoscaled one starts at `min`.
    if (lag_loop_->autoscaled(name)) rt->resize(lag_loop_->desired(name));
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
    for (auto& [name, b] : brokers_) {
      auto& counted = ingress_sinks_[name];
      counted = std::make_unique<metrics::CountedSink>(b->sink(), name, metrics_.published);
      sinks.emplace(name, counted.get());
    }
    http::HttpServer::Options http_opts;
    http_opts.metrics = &metrics_;
    http_ = std::make_unique<api::HttpApi>(
        cfg_.http, sinks, cfg_.brokers.front().name, [this] { return ready(); },
        [this] { return metrics_.text(); }, http_opts);
    http_->reserve_topics(topology::internal_topics(cfg_));
    http_->refuse_unknown_topics(unknown_topic_check(cfg_));
    api::add_system_routes(http_->server(),
                           {&cfg_, dispatcher_.get(), &runtimes_, [this](const std::string& fn) {
                              return api::PoolView{lag_loop_->desired(fn),
                                                   lag_loop_->autoscaled(fn)};
                            }});
    api::add_pause_routes(http_->server(), *dispatcher_);  // `sluice pause` / `resume`
    auto fns = std::make_unique<api::FunctionRoutes>(cfg_, *dispatcher_, sinks, metrics_);
    fns->set_control_keys(&*control_keys_);
    http_->set_functions(std::move(fns));
    if (auto r = http_->start(); !r) return r.error();
  }
  lag_loop_->start();
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
uint16_t Engine::metrics_port() const { return metrics_listener_ ? metrics_listener_->port() : 0; }

bool Engine::shutdown() {
  if (!dispatcher_) return true;
  ready_ = false;
  if (lag_loop_) lag_loop_->stop();
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
  lag_loop_.reset();
  dispatcher_.reset();
  runtimes_.clear();
  http_.reset();
  metrics_listener_.reset();
  callbacks_.reset();
  callback_hook_.reset();
  brokers_.clear();
  return drained;
}

}  // namespace sluice::cmd
