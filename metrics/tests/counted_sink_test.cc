#include "metrics/counted_sink.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metrics/metrics.h"

namespace sluice::metrics::testing {
namespace {

// Completes each publish at once: with an error when `fail` is set.
struct FakeSink : Sink {
  bool fail = false;
  std::vector<std::string> topics;
  std::string_view broker() const override { return "fake"; }
  void publish(std::string_view topic, Event, PublishCallback done) override {
    topics.emplace_back(topic);
    if (fail) return done(Error{Errc::unavailable, "broker down"});
    done(PublishAck{std::string(topic), 0, static_cast<int64_t>(topics.size())});
  }
  Result<void> flush(std::chrono::milliseconds) override { return ok(); }
};

double published(Metrics& m, const std::string& broker, const std::string& topic) {
  return m.published.Add({{"broker", broker}, {"topic", topic}}).Value();
}

TEST(CountedSink, CountsDurablePublishesAndPassesTheAnswerOn) {
  Metrics m;
  FakeSink inner;
  CountedSink sink(inner, "local", m.published);
  EXPECT_EQ(sink.broker(), "fake");
  int answers = 0;
  for (int i = 0; i < 3; ++i)
    sink.publish("orders", Event{}, [&](Result<PublishAck> r) {
      ++answers;
      ASSERT_TRUE(r);
      EXPECT_EQ(r.value().topic, "orders");
    });
  inner.fail = true;
  sink.publish("orders", Event{}, [&](Result<PublishAck> r) {
    ++answers;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "broker down");
  });
  EXPECT_EQ(answers, 4);
  EXPECT_EQ(inner.topics.size(), 4u);
  EXPECT_EQ(published(m, "local", "orders"), 3);  // the failed one is not counted
  EXPECT_NE(m.text().find("sluice_published_total{broker=\"local\",topic=\"orders\"} 3"),
            std::string::npos);
}

TEST(CountedSink, TopicsBeyondTheBoundShareOneSeries) {
  Metrics m;
  FakeSink inner;
  CountedSink sink(inner, "local", m.published);
  for (size_t i = 0; i < CountedSink::kMaxTopics + 5; ++i)
    sink.publish("t" + std::to_string(i), Event{}, [](Result<PublishAck>) {});
  sink.publish("t0", Event{}, [](Result<PublishAck>) {});  // known: keeps its own series
  EXPECT_EQ(published(m, "local", "t0"), 2);
  EXPECT_EQ(published(m, "local", "t" + std::to_string(CountedSink::kMaxTopics - 1)), 1);
  EXPECT_EQ(published(m, "local", std::string(CountedSink::kOtherTopic)), 5);
  // The later topics got no series of their own (Add above would have created one at 0).
  const std::string text = m.text();
  EXPECT_EQ(text.find("topic=\"t" + std::to_string(CountedSink::kMaxTopics + 1) + "\""),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::metrics::testing
