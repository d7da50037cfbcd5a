// The words the topology plan (topology/plan.h) and the dispatcher share about one
// route — a (source, function) pair: what the source feeds the function, and where a
// failed event's next attempt waits. The plan decides both; the dispatcher only
// carries them out.
#pragma once

#include <cstdint>

namespace sluice {

// What a route feeds: the function's own subscription, or its retry topic (whose
// events carry sealed retry headers and are held back until due, never longer than
// the function's retry.max from when they are read; one without a valid seal runs
// at once as a fresh event).
enum class RouteRole : uint8_t { subscription, retry };

// Where the next attempt of a failed event waits (`retry.mode`):
//   lane      — in its ordering lane, on a timer (retry.mode inline; or topic mode
//               where the function has no retry topic, e.g. a second subscription
//               beside a JetStream first one)
//   topic     — re-published to the function's retry topic, the original committed
//               (retry.mode topic on a broker that holds retry topics)
//   redeliver — settled with nack(delay): the broker redelivers it when due
//               (retry.mode topic on JetStream; only on a source that feeds one route)
enum class RetryPath : uint8_t { lane, topic, redeliver };

}  // namespace sluice
