// Dead-letter records (PRODUCT.md section 6).
//
// A dead letter is the ORIGINAL event — payload, key, headers and CloudEvents
// attributes untouched — plus string headers `sluice-dlq-*`. The same form is used
// on every broker, so `sluice dlq` and replay work alike everywhere.
//
// The sluice-dlq-* headers are sealed with the control key (core/seal.h): a record
// that does not verify was not written by sluice (or was changed, or sealed with a
// key that was since retired). `sluice dlq` marks such records unverified and
// replays them only with --force.
#pragma once

#include <cstdint>
#include <string>

#include "core/event.h"
#include "core/result.h"
#include "core/runtime.h"
#include "core/seal.h"

namespace sluice::dlq {

inline constexpr std::string_view kHeaderPrefix = "sluice-dlq-";

struct Failure {
  std::string function;
  Outcome outcome = Outcome::error;  // error class: error|timeout|crash|rejected
  std::string message;
  uint32_t attempts = 0;
  int64_t first_failure_ms = 0;
  int64_t last_failure_ms = 0;
  const char* error_class = nullptr;  // set: this class instead of the outcome's (`expired`)
};

// The dead-letter event for `original` (copied; the original is not modified),
// sealed with the first key of `keys`. Also records the original event id
// (sluice-dlq-event-id), which the seal binds.
Event make_record(const Event& original, const Failure& f, const seal::Keyring& keys);

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
  // Its seal verified with the keyring given to parse_record; otherwise why not.
  bool verified = false;
  std::string unverified_reason;
};

// Errc::invalid_argument when the event carries no sluice-dlq-* headers. The seal is
// checked against `keys` (null: no key to check with, every record unverified).
Result<Record> parse_record(Event stored, const seal::Keyring* keys);

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
