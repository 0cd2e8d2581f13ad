// The stretch of a spread pool's fill in which every shard restored: its
// bounds, the restores counted in it, and the cases with no such stretch.
#include "bench/parallel_fill.h"

#include <gtest/gtest.h>

namespace thaw::bench {
namespace {

TEST(ParallelFill, CountsOnlyWhileEveryShardRestores) {
  // Shard 1 fills 0..4 from t=0 to t=0.4; shard 2 starts late (t=0.2) and
  // is full at t=0.6.
  const std::vector<std::vector<WarmSample>> shards{
      {{0.0, 0}, {0.1, 1}, {0.2, 2}, {0.3, 3}, {0.4, 4}, {0.5, 4}},
      {{0.0, 0}, {0.1, 0}, {0.2, 1}, {0.3, 2}, {0.4, 3}, {0.5, 3}, {0.6, 4}}};
  auto fill = parallel_fill(shards, {4, 4});
  ASSERT_TRUE(fill.has_value());
  EXPECT_DOUBLE_EQ(fill->from_s, 0.2);  // shard 2's first clone
  EXPECT_DOUBLE_EQ(fill->to_s, 0.4);    // shard 1 full
  // Shard 1: 2 -> 4, shard 2: 1 -> 3.
  EXPECT_EQ(fill->restored, 4u);
  EXPECT_NEAR(fill->per_second, 20.0, 1e-9);
}

TEST(ParallelFill, ReadsEachShardAtItsLastSampleBeforeABound) {
  // The shards sample at different moments, as their threads do.
  const std::vector<std::vector<WarmSample>> shards{{{0.05, 1}, {0.25, 3}, {0.45, 6}},
                                                    {{0.10, 1}, {0.30, 2}, {0.50, 2}, {0.70, 6}}};
  auto fill = parallel_fill(shards, {6, 6});
  ASSERT_TRUE(fill.has_value());
  EXPECT_DOUBLE_EQ(fill->from_s, 0.10);
  EXPECT_DOUBLE_EQ(fill->to_s, 0.45);
  // Shard 1: 1 (at 0.05) -> 6; shard 2: 1 -> 2 (at 0.30).
  EXPECT_EQ(fill->restored, 6u);
  EXPECT_NEAR(fill->per_second, 6 / 0.35, 1e-9);
}

TEST(ParallelFill, NoStretchWhereThereIsNone) {
  const std::vector<WarmSample> filled{{0.1, 1}, {0.2, 2}};
  // One shard only.
  EXPECT_FALSE(parallel_fill({filled}, {2}).has_value());
  // A shard that never had a clone, or never filled.
  EXPECT_FALSE(parallel_fill({filled, {{0.1, 0}, {0.3, 0}}}, {2, 2}).has_value());
  EXPECT_FALSE(parallel_fill({filled, {{0.1, 1}, {0.3, 1}}}, {2, 2}).has_value());
  // Shard 1 was full before shard 2 began.
  EXPECT_FALSE(parallel_fill({filled, {{0.3, 1}, {0.4, 2}}}, {2, 2}).has_value());
  // Sizes that do not match.
  EXPECT_FALSE(parallel_fill({filled, filled}, {2}).has_value());
}

TEST(ParallelFill, ReadsASingleShardsSamples) {
  const std::vector<WarmSample> samples{{0.2, 3}, {0.4, 5}, {0.6, 8}};
  EXPECT_EQ(warm_at(samples, 0.1), 0u);  // before the first sample
  EXPECT_EQ(warm_at(samples, 0.4), 5u);
  EXPECT_EQ(warm_at(samples, 0.5), 5u);
  EXPECT_EQ(warm_at(samples, 9.0), 8u);
  EXPECT_EQ(first_at_least(samples, 4), 0.4);
  EXPECT_EQ(first_at_least(samples, 1), 0.2);
  EXPECT_FALSE(first_at_least(samples, 9).has_value());
}

}  // namespace
}  // namespace thaw::bench
