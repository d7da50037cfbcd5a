// The frame codec: round trip across arbitrary chunking, and each bad form.
#include <gtest/gtest.h>

#include "workers/frame.h"

namespace sluice::workers::testing {
namespace {

v1::Frame result_frame(uint64_t id, std::string output) {
  v1::Frame f;
  f.mutable_result()->set_id(id);
  f.mutable_result()->set_status(v1::Result::OK);
  f.mutable_result()->set_output(std::move(output));
  return f;
}

TEST(FrameReader, ReassemblesFramesFromAnyChunking) {
  std::string stream;
  for (uint64_t i = 1; i <= 50; ++i) append_frame(result_frame(i, std::string(i * 37, 'a')), stream);
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{4096}, stream.size()}) {
    FrameReader r;
    uint64_t next = 1;
    v1::Frame f;
    for (size_t at = 0; at < stream.size(); at += chunk) {
      r.feed(std::string_view(stream).substr(at, chunk));
      while (r.next(f) == FrameReader::Status::frame) {
        ASSERT_EQ(f.result().id(), next) << chunk;
        EXPECT_EQ(f.result().output().size(), next * 37);
        ++next;
      }
    }
    EXPECT_EQ(next, 51u) << chunk;
    EXPECT_EQ(r.buffered(), 0u);
  }
}

TEST(FrameReader, TooLongALengthIsAnErrorBeforeAnyAllocation) {
  FrameReader r(1024);
  r.feed("Traceback (most recent call last):\n");
  v1::Frame f;
  ASSERT_EQ(r.next(f), FrameReader::Status::error);
  EXPECT_NE(r.error().find("exceeds the 1024 byte limit"), std::string::npos) << r.error();
  EXPECT_NE(r.error().find("Traceback"), std::string::npos) << r.error();
  EXPECT_EQ(r.next(f), FrameReader::Status::error);  // the stream stays unusable
}

TEST(FrameReader, UnparsableAndEmptyFramesAreErrors) {
  FrameReader bad;
  bad.feed(std::string("\0\0\0\3\xff\xff\xff", 7));
  v1::Frame f;
  EXPECT_EQ(bad.next(f), FrameReader::Status::error);
  EXPECT_NE(bad.error().find("does not parse"), std::string::npos) << bad.error();
  FrameReader empty;
  empty.feed(std::string("\0\0\0\0", 4));
  EXPECT_EQ(empty.next(f), FrameReader::Status::error);
  EXPECT_NE(empty.error().find("no known kind"), std::string::npos) << empty.error();
}

TEST(FrameReader, PartialFrameWaitsForMore) {
  std::string stream;
  append_frame(result_frame(7, "x"), stream);
  FrameReader r;
  r.feed(std::string_view(stream).substr(0, stream.size() - 1));
  v1::Frame f;
  EXPECT_EQ(r.next(f), FrameReader::Status::need_more);
  r.feed(std::string_view(stream).substr(stream.size() - 1));
  EXPECT_EQ(r.next(f), FrameReader::Status::frame);
  EXPECT_EQ(f.result().id(), 7u);
}

}  // namespace
}  // namespace sluice::workers::testing
