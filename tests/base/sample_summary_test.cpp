#include "base/sample_summary.h"

#include <gtest/gtest.h>

namespace thaw {
namespace {

TEST(SampleSummary, NearestRankOverUnsortedSamples) {
  std::vector<double> samples;
  for (int i = 100; i >= 1; --i) samples.push_back(i);  // 100 .. 1
  auto s = summarize_samples(samples);
  EXPECT_EQ(s.runs, 100u);
  EXPECT_DOUBLE_EQ(s.min_ms, 1);
  EXPECT_DOUBLE_EQ(s.median_ms, 50);  // rank ceil(0.5 * 100) = 50
  EXPECT_DOUBLE_EQ(s.p99_ms, 99);
  EXPECT_DOUBLE_EQ(s.mean_ms, 50.5);
}

TEST(SampleSummary, OneSampleAndNone) {
  auto one = summarize_samples({7.5});
  EXPECT_DOUBLE_EQ(one.min_ms, 7.5);
  EXPECT_DOUBLE_EQ(one.median_ms, 7.5);
  EXPECT_DOUBLE_EQ(one.p99_ms, 7.5);
  auto none = summarize_samples({});
  EXPECT_EQ(none.runs, 0u);
  EXPECT_DOUBLE_EQ(none.p99_ms, 0);
}

}  // namespace
}  // namespace thaw
