// CountedSink: a Sink that counts every event it published durably in
// sluice_published_total{broker,topic}, for publishers that do not count their own.
// The dispatcher counts outputs, retries and dead letters itself; the engine hands
// the HTTP ingress (POST /topics/{topic}) CountedSinks over the brokers' sinks, so
// ingress publishes count there too.
//
// Topics come from requests (untrusted): the first kMaxTopics distinct topics get a
// series each, later ones share topic="<other>" (no topic name holds '<'), so a
// client cannot grow the exposition without bound.
//
// Threads: publish() from any thread (a lookup under mu_); the count is taken in the
// inner sink's completion (an adapter thread) on a prometheus-cpp counter (atomic).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include <map>
#include <mutex>
#include <string>

#include "core/broker.h"

namespace sluice::metrics {

class CountedSink final : public Sink {
 public:
  static constexpr size_t kMaxTopics = 1000;
  static constexpr std::string_view kOtherTopic = "<other>";

  // `inner` and `published` outlive this; `broker` is the broker's config name.
  CountedSink(Sink& inner, std::string broker, prometheus::Family<prometheus::Counter>& published);

  std::string_view broker() const override { return inner_.broker(); }
  void publish(std::string_view topic, Event ev, PublishCallback done) override;
  Result<void> flush(std::chrono::milliseconds timeout) override { return inner_.flush(timeout); }

 private:
  prometheus::Counter& counter(std::string_view topic);

  Sink& inner_;
  const std::string broker_;
  prometheus::Family<prometheus::Counter>& published_;
  std::mutex mu_;  // guards counters_
  std::map<std::string, prometheus::Counter*, std::less<>> counters_;
};

}  // namespace sluice::metrics
