// The stdio frame protocol v1 (schemas/worker.proto): a 4-byte unsigned big-endian
// length, then that many bytes of a serialized sluice.v1.Frame, at most 64 MiB.
//
// Threading: plain values; a FrameReader belongs to the one strand reading a pipe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "worker.pb.h"

namespace sluice::workers {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kMaxFrameBytes = size_t{64} << 20;

// Appends the length prefix and the serialized frame to `out`.
void append_frame(const v1::Frame& frame, std::string& out);

// Reassembles frames from arbitrary chunks of a byte stream.
class FrameReader {
 public:
  enum class Status { frame, need_more, error };

  explicit FrameReader(size_t max_frame = kMaxFrameBytes) : max_frame_(max_frame) {}

  void feed(std::string_view bytes) { buf_.append(bytes); }
  // The next complete frame into `out`. On `error`, error() says what was wrong
  // (the stream is unusable afterwards: the peer must be restarted).
  Status next(v1::Frame& out);
  const std::string& error() const { return error_; }
  size_t buffered() const { return buf_.size() - pos_; }

 private:
  size_t max_frame_;
  std::string buf_;
  size_t pos_ = 0;  // start of the unread bytes in buf_
  std::string error_;
};

// "hello", "result", ... for messages; "empty" when no kind is set.
const char* frame_kind(const v1::Frame& f);

}  // namespace sluice::workers
