#include <gtest/gtest.h>

#include "dispatcher/commit_tracker.h"

namespace sluice::dispatcher::testing {
namespace {

TEST(CommitTracker, CommitsOnlyTheContiguousFinishedPrefix) {
  CommitTracker t;
  for (int64_t o = 0; o < 5; ++o) ASSERT_TRUE(t.delivered(o));
  EXPECT_EQ(t.finished(2), std::nullopt);  // 0 and 1 still running
  EXPECT_EQ(t.finished(1), std::nullopt);
  EXPECT_EQ(t.finished(0), 3);  // 0,1,2 done -> commit 3
  EXPECT_EQ(t.finished(4), std::nullopt);
  EXPECT_EQ(t.finished(3), 5);
  EXPECT_EQ(t.outstanding(), 0u);
}

TEST(CommitTracker, GapsInOffsetsDoNotStall) {
  CommitTracker t;
  for (int64_t o : {10, 13, 20}) t.delivered(o);
  EXPECT_EQ(t.finished(10), 11);
  EXPECT_EQ(t.finished(20), std::nullopt);
  EXPECT_EQ(t.finished(13), 21);
}

TEST(CommitTracker, IgnoresUnknownAndDuplicateOffsets) {
  CommitTracker t;
  t.delivered(5);
  EXPECT_FALSE(t.delivered(5));
  EXPECT_FALSE(t.delivered(3));
  EXPECT_EQ(t.finished(4), std::nullopt);
  EXPECT_EQ(t.finished(5), 6);
  EXPECT_EQ(t.finished(5), std::nullopt);
}

TEST(CommitTracker, ResetForgetsEverythingAndAcceptsRedelivery) {
  CommitTracker t;
  t.delivered(7);
  t.delivered(8);
  t.reset();
  EXPECT_EQ(t.finished(7), std::nullopt);
  EXPECT_TRUE(t.delivered(7));  // the partition came back: the same offsets again
  EXPECT_EQ(t.finished(7), 8);
}

}  // namespace
}  // namespace sluice::dispatcher::testing
