// ResultHook: where a function's final result goes besides its `output` — the results
// of asynchronous invocations that asked for a callback (api/callbacks.h implements it).
// The dispatcher knows nothing of what an event carries for the hook: the hook screens
// each event as it is taken in, and turns a final result into an event to deliver,
// which the dispatcher publishes like an output (the task's outbox: retried with
// backoff, the event committed only once it is delivered).
//
// Threads: called on the dispatcher thread only; must not block. One hook may serve
// every function (const, no mutable state).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/broker.h"
#include "core/event.h"
#include "core/runtime.h"

namespace sluice::dispatcher {

class ResultHook {
 public:
  virtual ~ResultHook() = default;

  struct Screened {
    bool wanted = false;              // the event asks for `function`'s final result
    const char* rejected = nullptr;   // what it carried for the hook did not verify and
                                      // was dropped: why (counted and logged by the caller)
  };
  // An event taken in for `function`, before it runs (also each retry record read back).
  virtual Screened screen(std::string_view function, Event& event) const = 0;

  struct Outbound {
    Sink* sink = nullptr;
    std::string topic;
    Event event;
  };
  // The final result of an event screen() wanted (success, or the failure that
  // dead-lettered it, after `attempts` attempts): what to deliver, or nothing.
  virtual std::optional<Outbound> result(std::string_view function, const Event& event,
                                         const InvocationResult& r, uint32_t attempts) const = 0;
};

}  // namespace sluice::dispatcher
