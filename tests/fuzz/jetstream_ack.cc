// The JetStream ack-subject parser (nats::parse_ack_subject, which the JetStream
// source reads delivery counts and sequences from) and subject_token: any reply
// subject is parsed or refused; what parses points into the subject.
#include "broker-adapters/nats/nats_codec.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

namespace {

bool inside(std::string_view part, std::string_view whole) {
  return part.empty() ||
         (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view subject = fuzz::as_text(data, size);
  nats::AckMeta meta;
  if (nats::parse_ack_subject(subject, meta)) {
    SLUICE_FUZZ_CHECK(subject.substr(0, 8) == "$JS.ACK.");
    SLUICE_FUZZ_CHECK(!meta.stream.empty() && !meta.consumer.empty());
    SLUICE_FUZZ_CHECK(inside(meta.stream, subject) && inside(meta.consumer, subject));
    SLUICE_FUZZ_CHECK(inside(meta.domain, subject));
    SLUICE_FUZZ_CHECK(meta.timestamp_ns >= 0);
    SLUICE_FUZZ_CHECK(meta.stream.find('.') == std::string_view::npos);
  }
  for (int n = -4; n <= 4; ++n) {
    const std::string_view tok = nats::subject_token(subject, n);
    SLUICE_FUZZ_CHECK(inside(tok, subject));
    SLUICE_FUZZ_CHECK(tok.find('.') == std::string_view::npos);
  }
  return 0;
}
