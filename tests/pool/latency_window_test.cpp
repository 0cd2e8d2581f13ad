#include "pool/latency_window.h"

#include <cmath>

#include <gtest/gtest.h>

namespace thaw::pool {
namespace {

TEST(LatencyWindow, EmptyHasNoSamples) {
  LatencyWindow w;
  auto s = w.summary();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.median_ms, 0);
}

TEST(LatencyWindow, NearestRankOverOneToHundred) {
  LatencyWindow w(1000);
  for (int i = 100; i >= 1; --i) w.add(i);  // order must not matter
  auto s = w.summary();
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.min_ms, 1);
  EXPECT_EQ(s.median_ms, 50);
  EXPECT_EQ(s.p99_ms, 99);
}

TEST(LatencyWindow, KeepsOnlyTheMostRecentSamples) {
  LatencyWindow w(4);
  for (double v : {100.0, 200.0, 1.0, 2.0, 3.0, 4.0}) w.add(v);
  auto s = w.summary();
  EXPECT_EQ(s.count, 6u);  // all counted
  EXPECT_EQ(s.min_ms, 1);   // the two old large ones are gone
  EXPECT_EQ(s.p99_ms, 4);
}

TEST(LatencyWindow, IgnoresNegativeAndNaN) {
  LatencyWindow w;
  w.add(-1);
  w.add(std::nan(""));
  w.add(2.5);
  auto s = w.summary();
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.median_ms, 2.5);
}

}  // namespace
}  // namespace thaw::pool
