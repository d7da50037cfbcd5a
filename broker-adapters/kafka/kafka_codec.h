// Kafka record <-> Event (the CloudEvents Kafka protocol binding).
//
// Pure functions over one record; safe on any thread (a record is used by one
// thread at a time, which callers guarantee).
//
// Decoding, in order:
//   - any `ce_*` header: binary mode (cloudevents::parse_binary, prefix "ce_");
//   - header content-type application/cloudevents+json: structured mode;
//   - otherwise, or when the CloudEvent is malformed: a plain event, id
//     "<topic>/<partition>/<offset>", source "/kafka/<topic>", type
//     io.sluice.kafka.record, datacontenttype from a content-type header, time from
//     the record timestamp, every header kept; a malformed CloudEvent also gets the
//     header `sluice-decode-error` (delivered, never dropped).
//   The record key, when there is one, is Event.key (else the partitionkey
//   extension). broker, topic, partition, offset, broker_timestamp_ms are set.
// Encoding: record key = Event.key (none when empty), value = Event.data, headers =
// cloudevents::to_binary(ev, "ce_") (ce_* attributes, content-type, Event.headers) —
// except for the dead letter of a plain record (type io.sluice.kafka.record with
// `sluice-dlq-*` headers): that is the record as it was read, key, value and headers
// untouched, plus the sluice-dlq-* headers, and no ce_* headers (PRODUCT.md §6).
#pragma once

#include <librdkafka/rdkafka.h>

#include <optional>
#include <string_view>

#include "core/event.h"
#include "core/result.h"

namespace sluice::kafka {

inline constexpr std::string_view kPlainType = "io.sluice.kafka.record";
inline constexpr std::string_view kDecodeErrorHeader = "sluice-decode-error";
// The dead-letter headers' prefix (PRODUCT.md §6; dlq/record.h writes them).
inline constexpr std::string_view kDeadLetterHeaderPrefix = "sluice-dlq-";

// `msg` must be a record (msg->err == 0). `decode_failed` is set when the record
// claimed to be a CloudEvent but did not parse.
Event record_to_event(const rd_kafka_message_t* msg, std::string_view broker,
                      bool* decode_failed = nullptr);
// The same, into `ev`, which must be default-made (the source's hot path builds the
// event where it stays, inside its Delivery: an Event is 13 strings, and every move
// of one costs as much as a small allocation).
void record_to_event(const rd_kafka_message_t* msg, std::string_view broker, Event& ev,
                     bool* decode_failed = nullptr);

// What decoding reads of a record besides its headers and value: views into it.
struct RecordMeta {
  std::string_view topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string_view> key;  // nullopt: the record has no key
  int64_t timestamp_ms = 0;             // 0: not available
};
// record_to_event without librdkafka: the record's parts as read from the message
// (the fuzz target drives this; record_to_event is a thin wrapper).
void decode_record(const RecordMeta& rec, Headers headers, std::string value,
                   std::string_view broker, Event& ev, bool* decode_failed = nullptr);

// The headers of the record for `ev` (the caller owns them until produce succeeds).
rd_kafka_headers_t* event_headers(const Event& ev);

}  // namespace sluice::kafka
