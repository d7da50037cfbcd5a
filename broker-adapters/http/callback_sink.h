// CallbackSink: delivers the results of asynchronous invocations to the
// `X-Callback-Url` their caller gave (POST /async-function/{name}, PRODUCT.md §5).
//
// It is a Sink whose "topic" is the callback URL: the dispatcher puts a callback in
// the finished event's outbox like an output, so the event is committed only after
// the callback was delivered (or given up on). Each callback is POSTed with the
// event's data as body, its datacontenttype as Content-Type and its headers
// (X-Call-Id, X-Function-Name, X-Function-Status) as HTTP headers. A non-2xx answer
// or a network error is retried with exponential backoff; after `max_attempts` the
// callback is given up (logged, counted in sluice_errors_total{component="callback"})
// and `done` reports success, so one dead receiver cannot hold a partition forever.
//
// Threads: `threads` worker threads do blocking connects/writes with a deadline;
// publish() and flush() are thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/broker.h"
#include "metrics/metrics.h"

namespace sluice::http {

struct CallbackUrl {
  std::string scheme;  // "http" or "https"
  std::string host;
  std::string port;    // "80"/"443" when not given
  std::string target;  // path and query, "/" at least
};
// Accepts http:// and https:// URLs with a host; anything else is Errc::invalid_argument.
Result<CallbackUrl> parse_callback_url(std::string_view url);

class CallbackSink final : public Sink {
 public:
  struct Options {
    int threads = 2;
    std::chrono::milliseconds timeout{10000};  // per attempt: connect + send + answer
    uint32_t max_attempts = 10;
    std::chrono::milliseconds initial{500};
    std::chrono::milliseconds max{30000};
  };
  CallbackSink(Metrics* metrics, Options opts);
  explicit CallbackSink(Metrics* metrics) : CallbackSink(metrics, Options{}) {}
  ~CallbackSink() override;

  std::string_view broker() const override { return "callback"; }
  void publish(std::string_view url, Event ev, PublishCallback done) override;
  Result<void> flush(std::chrono::milliseconds timeout) override;
  // Stops the threads; callbacks not yet delivered complete with Errc::closed.
  void stop();

 private:
  struct Job {
    std::string url;
    Event event;
    PublishCallback done;
    uint32_t attempt = 0;
  };
  void run();
  Result<int> attempt(const CallbackUrl& url, const Event& ev);
  void finish(Job& job, Result<PublishAck> r);

  Metrics* metrics_;
  Options opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::multimap<std::chrono::steady_clock::time_point, Job> queue_;
  size_t busy_ = 0;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace sluice::http
