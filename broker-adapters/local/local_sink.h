// LocalSink: the Sink of the local broker — publishes go to the LocalQueue's writer
// thread and are answered there once their group-committed transaction is synced.
//
// Ownership and threads: owned by LocalBroker, references its LocalQueue. All
// methods are thread-safe; callbacks run on the queue's writer thread.
#pragma once

#include "broker-adapters/local/local_queue.h"
#include "core/broker.h"

namespace sluice::local {

class LocalSink final : public Sink {
 public:
  explicit LocalSink(LocalQueue& q) : q_(q) {}
  std::string_view broker() const override { return q_.options().broker; }
  void publish(std::string_view topic, Event ev, PublishCallback done) override {
    q_.publish(topic, std::move(ev), std::move(done));
  }
  Result<void> flush(std::chrono::milliseconds timeout) override { return q_.flush(timeout); }

 private:
  LocalQueue& q_;
};

}  // namespace sluice::local
