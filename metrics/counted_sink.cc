#include "metrics/counted_sink.h"

namespace sluice::metrics {

CountedSink::CountedSink(Sink& inner, std::string broker,
                         prometheus::Family<prometheus::Counter>& published)
    : inner_(inner), broker_(std::move(broker)), published_(published) {}

prometheus::Counter& CountedSink::counter(std::string_view topic) {
  std::lock_guard lk(mu_);
  if (auto it = counters_.find(topic); it != counters_.end()) return *it->second;
  const bool full = counters_.size() >= kMaxTopics;
  const std::string label(full ? kOtherTopic : topic);
  if (auto it = counters_.find(label); it != counters_.end()) return *it->second;
  auto* c = &published_.Add({{"broker", broker_}, {"topic", label}});
  counters_.emplace(label, c);
  return *c;
}

void CountedSink::publish(std::string_view topic, Event ev, PublishCallback done) {
  prometheus::Counter* c = &counter(topic);
  inner_.publish(topic, std::move(ev), [c, done = std::move(done)](Result<PublishAck> r) {
    if (r) c->Increment();
    done(std::move(r));
  });
}

}  // namespace sluice::metrics
