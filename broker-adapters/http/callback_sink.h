// CallbackSink: delivers the results of asynchronous invocations to the
// `X-Callback-Url` their caller gave (POST /async-function/{name}, PRODUCT.md §5).
//
// It is a Sink whose "topic" is the callback URL: the dispatcher puts a callback in
// the finished event's outbox like an output, so the event is committed only after
// the callback was delivered (or given up on). Each callback is POSTed with the
// event's data as body, its datacontenttype as Content-Type and its headers
// (X-Call-Id, X-Function-Name, X-Function-Status, ...) as HTTP headers.
//
// Destinations: only where CallbackPolicy allows (callback_policy.h). Names are
// resolved once per attempt and only the allowed addresses of that answer are
// connected to; a callback with no allowed address is refused (not retried, counted,
// logged once per host) and reported done, like a given-up one.
//
// Delivery is asynchronous: resolve, connect, TLS handshake (https: peer and host name
// verified), write and the answer's header all run under one deadline per attempt
// (Options::timeout), after which the attempt is aborted; only the answer's header is
// read (bounded), redirects are not followed. At most `concurrency` attempts run at
// once, at most `per_host` to one host:port. A non-2xx answer or an error is retried
// after config/backoff.h's backoff_delay(Options::retry); after `retry.max_attempts`
// the callback is given up (logged, counted) and `done` reports success, so one dead
// receiver cannot hold a partition forever.
//
// Bounded: at most `max_queue` callbacks are held (waiting, in flight or backing off);
// beyond that publish() fails at once with a retriable Errc::overloaded, and the
// dispatcher keeps the event (its outbox retry and in-flight budget pause the
// partition: back-pressure, no loss, no dead letter).
//
// stop() aborts every attempt at once (sockets closed, timers and lookups cancelled)
// and completes each undelivered callback with Errc::closed: its event stays
// uncommitted and is delivered (and called back) again after a restart.
//
// Metric: sluice_callbacks_total{outcome} (metrics/README.md).
//
// Threads: one io thread of its own runs every attempt, timer and the bookkeeping;
// name lookups run on short-lived detached threads (getaddrinfo cannot be cancelled;
// a stuck one is abandoned, never waited for). publish(), flush() and stop() may be
// called from any thread; `done` callbacks run on the io thread (or in publish() when
// it refuses at once).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "broker-adapters/http/callback_policy.h"
#include "config/config.h"
#include "core/broker.h"
#include "metrics/metrics.h"

namespace sluice::http {

class CallbackSink final : public Sink {
 public:
  struct Options {
    std::chrono::milliseconds timeout{10000};  // one attempt, resolve to answer, in total
    // Attempts and the backoff between them (exponential from 500 ms to 30 s, full jitter).
    RetryPolicy retry{10, BackoffKind::exponential, std::chrono::milliseconds(500),
                      std::chrono::milliseconds(30000), Jitter::full, RetryMode::inline_mode};
    uint32_t concurrency = 64;   // attempts in flight at once
    uint32_t per_host = 8;       // of which to one host:port
    size_t max_queue = 1024;     // callbacks held at once
    size_t max_answer_header = 16 * 1024;  // bytes of the receiver's answer read
    std::vector<CallbackAllow> allow;      // http.callback_allow

    // From the `http:` section: timeout, attempts, concurrency, allow-list;
    // per_host = min(8, concurrency), max_queue = 16 x concurrency.
    static Options from(const HttpConfig& http);
  };
  CallbackSink(metrics::Metrics* metrics, Options opts);
  explicit CallbackSink(metrics::Metrics* metrics) : CallbackSink(metrics, Options{}) {}
  ~CallbackSink() override;
  CallbackSink(const CallbackSink&) = delete;
  CallbackSink& operator=(const CallbackSink&) = delete;

  std::string_view broker() const override { return "callback"; }
  void publish(std::string_view url, Event ev, PublishCallback done) override;
  Result<void> flush(std::chrono::milliseconds timeout) override;
  // Aborts everything at once; callbacks not yet delivered complete with Errc::closed.
  void stop();

  const CallbackPolicy& policy() const { return policy_; }
  size_t held() const;  // callbacks accepted and not yet completed

 private:
  struct Impl;
  struct Job;
  struct Attempt;
  struct Lookup;

  CallbackPolicy policy_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::http
