// Dead-letter records (PRODUCT.md section 6).
//
// A dead letter is the ORIGINAL event — payload, key, headers and CloudEvents
// attributes untouched — plus string headers `sluice-dlq-*`. The same form is used
// on every broker, so `sluice dlq` and replay work alike everywhere.
#pragma once

#include <cstdint>
#include <string>

#include "core/event.h"
#include "core/result.h"
#include "core/runtime.h"

namespace sluice::dlq {

inline constexpr std::string_view kHeaderPrefix = "sluice-dlq-";

struct Failure {
  std::string function;
  Outcome outcome = Outcome::error;  // error class: error|timeout|crash|rejected
  std::string message;
  uint32_t attempts = 0;
  int64_t first_failure_ms = 0;
  int64_t last_failure_ms = 0;
};

// The dead-letter event for `original` (copied; the original is not modified).
Event make_record(const Event& original, const Failure& f);

// The decoded view of a stored dead letter (its own coordinates in `event`).
struct Record {
  std::string id;           // "<dlq topic>:<partition>:<offset>"
  std::string function;
  std::string error_class;  // error|timeout|crash|rejected|expired
  std::string error_message;
  uint32_t attempts = 0;
  int64_t first_failure_ms = 0;
  int64_t last_failure_ms = 0;
  std::string original_broker, original_topic;
  int32_t original_partition = -1;
  int64_t original_offset = -1;
  Event event;  // as stored, dlq headers included
};

// Errc::invalid_argument when the event carries no sluice-dlq-* headers.
Result<Record> parse_record(Event stored);

// The event to re-publish: the stored one without the sluice-dlq-* headers and
// without transport coordinates or delivery metadata.
Event original_event(const Record& r);

// "<dlq topic>:<partition>:<offset>" <-> coordinates.
struct RecordId {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
};
std::string record_id(std::string_view topic, int32_t partition, int64_t offset);
Result<RecordId> parse_record_id(std::string_view id);

// JSON of a record (for `dlq list --json` and `dlq show`).
std::string to_json(const Record& r, bool with_data);

}  // namespace sluice::dlq
