// scaling::event_limit: what the lag loop lets the dispatcher run for a pool size.
#include "scaling/lag_loop.h"

#include <gtest/gtest.h>

namespace sluice::scaling {
namespace {

TEST(EventLimit, OneEventPerWorkerIsCappedAtConcurrency) {  // exec, inproc
  EXPECT_EQ(event_limit(0, 1, 8), 0u);
  EXPECT_EQ(event_limit(3, 1, 8), 3u);
  EXPECT_EQ(event_limit(20, 1, 8), 8u);
}

TEST(EventLimit, AMultiplexingWorkerAllowsTheWholeConcurrency) {  // stdio, http
  EXPECT_EQ(event_limit(0, 8, 8), 0u);  // no worker holds every event
  EXPECT_EQ(event_limit(1, 8, 8), 8u);
  EXPECT_EQ(event_limit(4000000000u, 4000000000u, 8), 8u);  // no overflow
}

}  // namespace
}  // namespace sluice::scaling
