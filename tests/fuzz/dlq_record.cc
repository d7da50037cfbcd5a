// Dead-letter record decoding (dlq::parse_record, what `sluice dlq list/show/replay`
// read from a dead-letter topic, where anyone who can publish may write): any
// headers give a record or an error; its JSON is valid and its original event has
// no sluice-dlq-* header left. Also the record-id parser (`dlq show ID`).
// Input: the stored event's headers (one per line), an empty line, its data
// (tests/fuzz/fuzz_input.h).
#include <nlohmann/json.hpp>

#include "core/seal.h"
#include "dlq/record.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in = fuzz::as_text(data, size);
  if (auto id = dlq::parse_record_id(in)) {
    SLUICE_FUZZ_CHECK(id.value().partition >= 0 && id.value().offset >= 0);
    SLUICE_FUZZ_CHECK(dlq::record_id(id.value().topic, id.value().partition,
                                     id.value().offset) == in ||
                      in.find_first_of("+0") != std::string_view::npos);
  }

  fuzz::Message m = fuzz::split_message(in);
  Event stored;
  stored.id = "3f1c2a9e-0b7d-4c55-9a43-2e1f0d8c7b6a";
  stored.source = "/sluice/http";
  stored.type = "io.sluice.publish";
  stored.broker = "local";
  stored.topic = "orders.dlq";
  stored.partition = 1;
  stored.offset = 17;
  stored.headers = std::move(m.headers);
  stored.data = std::move(m.body);
  // sluice's key, which the input cannot know: no input may verify.
  static const seal::Keyring keys = seal::Keyring::random();
  auto rec = dlq::parse_record(std::move(stored), &keys);
  if (!rec) return 0;
  SLUICE_FUZZ_CHECK(!rec.value().verified && !rec.value().unverified_reason.empty());
  SLUICE_FUZZ_CHECK(rec.value().id == "orders.dlq:1:17");
  for (bool with_data : {false, true}) {
    const std::string json = dlq::to_json(rec.value(), with_data);
    SLUICE_FUZZ_CHECK(nlohmann::json::accept(json));
  }
  const Event original = dlq::original_event(rec.value());
  for (const Header& h : original.headers) {
    std::string lower = h.name;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    SLUICE_FUZZ_CHECK(lower.size() <= dlq::kHeaderPrefix.size() ||
                      lower.compare(0, dlq::kHeaderPrefix.size(), dlq::kHeaderPrefix) != 0);
  }
  return 0;
}
