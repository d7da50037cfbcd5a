// The stdio frame reader (workers/frame.h) on what a worker's stdout could carry:
// the stream arrives in chunks (their size set by the first input byte, as pipe
// reads split it anywhere); every frame read re-encodes to a frame that reads back
// with the same kind, and a stream ends in need_more or one sticky error.
#include "tests/fuzz/fuzz_input.h"
#include "workers/frame.h"

using namespace sluice;
using namespace sluice::workers;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t chunk = 1 + data[0] % 64;
  std::string_view in = fuzz::as_text(data + 1, size - 1);
  FrameReader reader(size_t{1} << 16);  // small enough to hit the limit check
  v1::Frame frame;
  for (;;) {
    const std::string_view piece = in.substr(0, chunk);
    in.remove_prefix(piece.size());
    reader.feed(piece);
    FrameReader::Status s;
    while ((s = reader.next(frame)) == FrameReader::Status::frame) {
      SLUICE_FUZZ_CHECK(frame.kind_case() != v1::Frame::KIND_NOT_SET);
      std::string bytes;
      append_frame(frame, bytes);
      FrameReader back;
      back.feed(bytes);
      v1::Frame copy;
      SLUICE_FUZZ_CHECK(back.next(copy) == FrameReader::Status::frame);
      SLUICE_FUZZ_CHECK(std::string_view(frame_kind(copy)) == frame_kind(frame));
      SLUICE_FUZZ_CHECK(back.buffered() == 0);
    }
    if (s == FrameReader::Status::error) {
      SLUICE_FUZZ_CHECK(!reader.error().empty());
      SLUICE_FUZZ_CHECK(reader.next(frame) == FrameReader::Status::error);
      return 0;
    }
    if (in.empty()) break;
  }
  return 0;
}
