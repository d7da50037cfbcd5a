#include "workers/frame.h"

#include <fmt/format.h>

#include <cctype>

namespace sluice::workers {

void append_frame(const v1::Frame& frame, std::string& out) {
  const size_t n = frame.ByteSizeLong();
  const size_t at = out.size();
  out.resize(at + 4 + n);
  auto* p = reinterpret_cast<unsigned char*>(out.data() + at);
  p[0] = static_cast<unsigned char>(n >> 24);
  p[1] = static_cast<unsigned char>(n >> 16);
  p[2] = static_cast<unsigned char>(n >> 8);
  p[3] = static_cast<unsigned char>(n);
  frame.SerializeWithCachedSizesToArray(p + 4);
}

namespace {

// The first bytes of a bad stream, printable, for the error message.
std::string preview(std::string_view b) {
  std::string out;
  for (char c : b.substr(0, 16)) {
    auto u = static_cast<unsigned char>(c);
    if (std::isprint(u))
      out += c;
    else
      out += fmt::format("\\x{:02x}", u);
  }
  return out;
}

}  // namespace

FrameReader::Status FrameReader::next(v1::Frame& out) {
  if (!error_.empty()) return Status::error;
  std::string_view rest(buf_.data() + pos_, buf_.size() - pos_);
  if (rest.size() < 4) return Status::need_more;
  auto* p = reinterpret_cast<const unsigned char*>(rest.data());
  const size_t n = (size_t{p[0]} << 24) | (size_t{p[1]} << 16) | (size_t{p[2]} << 8) | p[3];
  if (n > max_frame_) {
    error_ = fmt::format(
        "frame length {} exceeds the {} byte limit (not a sluice v1 frame stream? it starts "
        "with \"{}\"; a function must not print to stdout, use stderr or log frames)",
        n, max_frame_, preview(rest));
    return Status::error;
  }
  if (rest.size() < 4 + n) return Status::need_more;
  out.Clear();
  if (!out.ParseFromArray(rest.data() + 4, static_cast<int>(n))) {
    error_ = fmt::format("a {} byte frame does not parse as sluice.v1.Frame (starts with \"{}\")",
                         n, preview(rest));
    return Status::error;
  }
  if (out.kind_case() == v1::Frame::KIND_NOT_SET) {
    error_ = fmt::format("a {} byte frame has no known kind (newer protocol?)", n);
    return Status::error;
  }
  pos_ += 4 + n;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (size_t{1} << 20) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return Status::frame;
}

const char* frame_kind(const v1::Frame& f) {
  switch (f.kind_case()) {
    case v1::Frame::kHello: return "hello";
    case v1::Frame::kHelloAck: return "hello_ack";
    case v1::Frame::kInvoke: return "invoke";
    case v1::Frame::kResult: return "result";
    case v1::Frame::kCancel: return "cancel";
    case v1::Frame::kLog: return "log";
    case v1::Frame::kGoodbye: return "goodbye";
    case v1::Frame::KIND_NOT_SET: break;
  }
  return "empty";
}

}  // namespace sluice::workers
