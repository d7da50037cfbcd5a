// The Kafka codec's decoding (kafka::decode_record, what record_to_event does with
// a consumed record): CloudEvents binary mode (ce_* headers), structured mode, or a
// plain record; a malformed CloudEvent is delivered as a plain record marked with
// sluice-decode-error, never dropped. Input: the record's headers (one per line),
// an empty line, its value (tests/fuzz/fuzz_input.h); the key is the first
// header's value when the input length is odd.
#include "broker-adapters/kafka/kafka_codec.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::Message m = fuzz::split_message(fuzz::as_text(data, size));
  const std::string key = m.headers.empty() ? std::string() : m.headers.front().value;
  kafka::RecordMeta rec;
  rec.topic = "orders";
  rec.partition = 3;
  rec.offset = 1234;
  rec.timestamp_ms = 1764921600000;
  if (size % 2 == 1) rec.key = key;
  Event ev;
  bool failed = false;
  kafka::decode_record(rec, std::move(m.headers), std::move(m.body), "kafka", ev, &failed);
  SLUICE_FUZZ_CHECK(ev.topic == "orders" && ev.partition == 3 && ev.offset == 1234);
  SLUICE_FUZZ_CHECK(!ev.id.empty() && !ev.source.empty() && !ev.type.empty());
  if (failed)
    SLUICE_FUZZ_CHECK(ev.type == kafka::kPlainType && ev.header(kafka::kDecodeErrorHeader));
  if (rec.key) SLUICE_FUZZ_CHECK(ev.key == key);
  // The sink's encoding of what was read (a dead letter or an output).
  rd_kafka_headers_t* hs = kafka::event_headers(ev);
  rd_kafka_headers_destroy(hs);
  return 0;
}
