// `sluice publish`: durable publish from the command line.
#include <fmt/core.h>

#include <condition_variable>
#include <iostream>
#include <mutex>

#include "broker-adapters/registry.h"
#include "cmd/cli.h"
#include "cmd/remembered_topics.h"
#include "core/topic.h"
#include "cmd/engine.h"

namespace sluice::cmd {

int publish(const PublishArgs& a) {
  Config cfg = load_or_exit(a.config);
  const BrokerConfig* bc = a.broker.empty() ? &cfg.brokers.front() : cfg.broker(a.broker);
  if (!bc) throw Exit{kUsage, "no broker named '" + a.broker + "' in " + a.config};
  if (a.count < 1) throw Exit{kUsage, "--count must be at least 1"};
  if (a.topic.empty()) throw Exit{kUsage, "a topic is required"};
  if (auto why = topic_name_error(a.topic))
    throw Exit{kUsage, "topic '" + printable_topic(a.topic) + "': " + *why};
  if (!a.internal && topology::internal_topics(cfg).count(a.topic))
    throw Exit{kUsage, "'" + a.topic +
                           "' is a function's retry or dead-letter topic: only sluice writes "
                           "there (add --internal to publish anyway; the record is unsealed, "
                           "so sluice treats it as a plain event or an unverified dead letter)"};
  // A topic nothing reads is most often a typo: a local broker refuses it, Kafka and NATS
  // (which may have readers other than sluice) publish it with a warning.
  const topology::KnownTopics known = topology::known_topics(cfg, bc->name);
  if (auto why = known.unknown(a.topic)) {
    if (known.refuses()) throw Exit{kUsage, *why + "; " + topology::declare_topic_hint(bc->name)};
    std::cerr << "warning: " << *why << "; publishing anyway (`sluice lag` lists the topic "
              << "while it holds events)\n";
    if (auto r = RememberedTopics(cfg).remember(bc->name, a.topic); !r)
      std::cerr << "warning: topic not remembered for `sluice lag`: " << r.error().message << "\n";
  }
  Headers headers;
  for (const auto& h : a.headers) {
    auto eq = h.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Exit{kUsage, "--header takes NAME=VALUE, got '" + h + "'"};
    headers.push_back({h.substr(0, eq), h.substr(eq + 1)});
  }
  std::string data = read_data_arg(a.data);
  auto broker = brokers::make_broker(*bc);
  if (!broker) throw Exit{kFailure, broker.error().message};

  std::mutex mu;
  std::condition_variable cv;
  int left = a.count, failed = 0;
  std::string first_error;
  std::vector<std::string> lines;
  // A window of publishes in flight: enough to fill group commits, bounded so a
  // large --count never outruns the broker's write queue (or our memory).
  const int window = 4096;
  int in_flight = 0;
  for (int i = 0; i < a.count; ++i) {
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return in_flight < window; });
      ++in_flight;
    }
    Event e;
    e.id = new_event_id();
    e.source = "/sluice/cli";
    e.type = a.type.empty() ? "io.sluice.publish" : a.type;
    e.time = format_rfc3339(now_unix_ms());
    e.key = a.key;
    e.headers = headers;
    e.data = data;
    std::string id = e.id;
    broker.value()->sink().publish(a.topic, std::move(e), [&, id](Result<PublishAck> r) {
      std::lock_guard lk(mu);
      if (!r) {
        if (!failed++) first_error = r.error().message;
      } else if (a.count <= 10) {
        lines.push_back(fmt::format("published {} to {} partition {} offset {}", id,
                                    r.value().topic, r.value().partition, r.value().offset));
      }
      --in_flight;
      --left;
      cv.notify_all();
    });
  }
  {
    std::unique_lock lk(mu);
    cv.wait(lk, [&] { return left == 0; });
  }
  broker.value()->stop();
  for (const auto& l : lines) std::cout << l << "\n";
  if (failed) throw Exit{kFailure, fmt::format("{} of {} events not published: {}", failed, a.count, first_error)};
  if (a.count > 10) std::cout << fmt::format("published {} events to {}\n", a.count, a.topic);
  return kOk;
}

}  // namespace sluice::cmd
