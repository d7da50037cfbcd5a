// Retry record decoding (retry::take_state, what the dispatcher reads from a
// `<function>.retry` topic, where anyone who can publish may write): any headers
// give a state or an error, the retry headers are gone afterwards either way, and
// what the dispatcher then does with the state (a new retry record, or a dead
// letter dated by it) does not break.
// Input: the event's headers (one per line), an empty line, its data
// (tests/fuzz/fuzz_input.h).
#include "core/seal.h"
#include "dispatcher/retry_topic.h"
#include "dlq/record.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

namespace {

bool is_retry_header(const std::string& name) {
  std::string lower = name;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return lower == dispatcher::retry::kAttempt || lower == dispatcher::retry::kDue || lower == dispatcher::retry::kFirstFailure ||
         lower == dispatcher::retry::kOrigin;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Message m = fuzz::split_message(fuzz::as_text(data, size));
  Event ev;
  ev.id = "3f1c2a9e-0b7d-4c55-9a43-2e1f0d8c7b6a";
  ev.source = "/sluice/http";
  ev.type = "io.sluice.publish";
  ev.broker = "local";
  ev.topic = "orders.retry";
  ev.partition = 0;
  ev.offset = 5;
  ev.headers = std::move(m.headers);
  ev.data = std::move(m.body);
  auto st = dispatcher::retry::take_state(ev);
  for (const Header& h : ev.headers) SLUICE_FUZZ_CHECK(!is_retry_header(h.name));
  if (!st) {
    SLUICE_FUZZ_CHECK(!st.error().message.empty());
    return 0;
  }
  const dispatcher::retry::State s = st.value();
  // Failed again: the next retry record, and the dead letter when attempts ran out,
  // both sealed with sluice's key.
  static const seal::Keyring keys = seal::Keyring::random();
  Event next = dispatcher::retry::make_event(ev, dispatcher::retry::State{s.attempts + 1, s.due_ms, s.first_failure_ms},
                                 keys, "orders");
  Event again = next;
  auto back = dispatcher::retry::take_state(again);
  SLUICE_FUZZ_CHECK(back.has_value() && back.value().first_failure_ms == s.first_failure_ms);
  SLUICE_FUZZ_CHECK(again.topic == ev.topic && again.offset == ev.offset);
  dlq::Failure f{"orders", Outcome::error, "boom", s.attempts, s.first_failure_ms, s.due_ms};
  auto rec = dlq::parse_record(dlq::make_record(ev, f, keys), &keys);
  SLUICE_FUZZ_CHECK(rec.has_value() && rec.value().verified);
  (void)dlq::to_json(rec.value(), true);
  return 0;
}
