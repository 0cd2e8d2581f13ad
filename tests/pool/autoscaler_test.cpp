// The autoscaler's arithmetic: demand from rate x refill time plus
// headroom, clamped to min/max, cut by the memory budget.
#include "pool/autoscaler.h"

#include <gtest/gtest.h>

namespace thaw::pool {
namespace {

AutoscaleInput input(double rate, double refill, uint32_t min_warm, uint32_t max_warm, uint64_t budget_mib = 4096) {
  AutoscaleInput in;
  in.arrival_rate_per_s = rate;
  in.refill_seconds = refill;
  in.policy.min_warm = min_warm;
  in.policy.max_warm = max_warm;
  in.policy.memory_budget_mib = budget_mib;
  in.headroom = 1;
  in.private_mib_per_clone = 8;
  return in;
}

TEST(Autoscaler, IdlePoolKeepsMinWarm) {
  auto d = autoscale(input(0, 0.05, 2, 16));
  EXPECT_EQ(d.demand, 1u);  // headroom only
  EXPECT_EQ(d.target, 2u);
  EXPECT_FALSE(d.budget_limited);
}

TEST(Autoscaler, DemandIsRateTimesRefillRoundedUpPlusHeadroom) {
  EXPECT_EQ(autoscale(input(100, 0.05, 0, 64)).target, 6u);   // 5 + 1
  EXPECT_EQ(autoscale(input(101, 0.05, 0, 64)).target, 7u);   // ceil(5.05) + 1
  EXPECT_EQ(autoscale(input(10, 0.001, 0, 64)).target, 2u);   // ceil(0.01) + 1
}

TEST(Autoscaler, AStallAllowanceAddsTheAcquiresThatArriveDuringIt) {
  auto in = input(200, 0.005, 0, 64);
  EXPECT_EQ(autoscale(in).target, 2u);  // ceil(1) + 1: one 15 ms stall would empty it
  in.stall_seconds = 0.02;
  EXPECT_EQ(autoscale(in).target, 6u);  // ceil(200 x 0.025) + 1
  in.arrival_rate_per_s = 0;
  EXPECT_EQ(autoscale(in).target, 1u) << "no traffic, no allowance";
  in.arrival_rate_per_s = 200;
  in.stall_seconds = -1;  // nonsense counts as none
  EXPECT_EQ(autoscale(in).target, 2u);
}

TEST(Autoscaler, ClampedToMaxWarm) {
  auto d = autoscale(input(10000, 0.05, 2, 16));
  EXPECT_EQ(d.demand, 501u);
  EXPECT_EQ(d.target, 16u);
  EXPECT_FALSE(d.budget_limited) << "max_warm is the policy, not the budget";
}

TEST(Autoscaler, MaxWarmZeroMeansNoPool) {
  EXPECT_EQ(autoscale(input(50, 1, 0, 0)).target, 0u);
}

TEST(Autoscaler, MemoryBudgetCountsLeasedClones) {
  auto in = input(1000, 0.1, 4, 64, /*budget_mib=*/100);  // 12 clones at 8 MiB
  in.leased = 5;
  auto d = autoscale(in);
  EXPECT_EQ(d.budget_clones, 12u);
  EXPECT_EQ(d.target, 7u);
  EXPECT_TRUE(d.budget_limited);
  in.leased = 20;  // already over the budget: no warm clones at all, even below min_warm
  EXPECT_EQ(autoscale(in).target, 0u);
}

TEST(Autoscaler, NonsenseInputsDoNotOverflow) {
  auto in = input(1e300, 1e300, 0, 8);
  EXPECT_EQ(autoscale(in).target, 8u);
  in = input(-5, -1, 1, 8);
  EXPECT_EQ(autoscale(in).target, 1u);
  in = input(1, 1, 1, 8);
  in.private_mib_per_clone = 0;  // treated as 1 MiB
  EXPECT_EQ(autoscale(in).budget_clones, 4096u);
}

// A pool prepares a VM shell for each clone it may still make: max_warm,
// or fewer where the memory budget holds fewer, less the clones it has.
TEST(PreparedShells, OneForEachCloneThePoolMayStillMakeWithinMaxWarmAndTheBudget) {
  PoolPolicy policy;
  policy.max_warm = 1000;
  policy.memory_budget_mib = 1 << 20;
  EXPECT_EQ(prepared_shell_count(policy, 5, 0, 1024), 1000u) << "max_warm decides";
  EXPECT_EQ(prepared_shell_count(policy, 5, 0, 512), 512u) << "at most the cap";
  policy.memory_budget_mib = 1000;  // 200 clones at 5 MiB
  EXPECT_EQ(budget_clones(policy, 5), 200u);
  EXPECT_EQ(prepared_shell_count(policy, 5, 0, 1024), 200u) << "the budget decides";
  EXPECT_EQ(prepared_shell_count(policy, 5, 150, 1024), 50u) << "less the clones the pool has";
  EXPECT_EQ(prepared_shell_count(policy, 5, 250, 1024), 0u) << "over the budget: none, no wrap-around";
  policy.max_warm = 0;
  EXPECT_EQ(prepared_shell_count(policy, 5, 0, 1024), 0u) << "a pool that keeps no clones";
}

TEST(Autoscaler, DescribeNamesTheInputs) {
  auto in = input(12, 0.05, 2, 16, 8);
  auto text = describe(in, autoscale(in));
  EXPECT_NE(text.find("target 1"), std::string::npos) << text;
  EXPECT_NE(text.find("rate 12.00/s"), std::string::npos) << text;
  EXPECT_NE(text.find("stall 0.000 s"), std::string::npos) << text;
  EXPECT_NE(text.find("limited by the budget"), std::string::npos) << text;
}

TEST(RateEstimator, FirstSampleThenSmoothing) {
  RateEstimator rate(0.5);
  rate.add_interval(10, 0.5);
  EXPECT_DOUBLE_EQ(rate.rate(), 20);
  rate.add_interval(0, 0.5);
  EXPECT_DOUBLE_EQ(rate.rate(), 10);
  rate.add_interval(5, 0);  // ignored
  EXPECT_DOUBLE_EQ(rate.rate(), 10);
}

TEST(RateEstimator, ANegligibleRateReadsAsZeroSoAnIdlePoolShrinksToItsHeadroom) {
  RateEstimator rate;  // alpha 0.3
  rate.add_interval(1, 0.5);  // one acquire, then silence
  int ticks = 0;
  while (rate.rate() > 0 && ticks < 1000) {
    rate.add_interval(0, 0.5);
    ++ticks;
  }
  EXPECT_EQ(rate.rate(), 0.0);
  EXPECT_LT(ticks, 20) << "2/s decays below 0.05/s in about 11 ticks";
  EXPECT_GT(ticks, 5) << "the rate must still decay, not drop at once";
  AutoscaleInput in;
  in.policy = PoolPolicy{0, 8, 1024};
  in.arrival_rate_per_s = rate.rate();
  in.refill_seconds = 0.005;
  in.headroom = 1;
  EXPECT_EQ(autoscale(in).target, 1u);
}

TEST(DurationEstimator, StartsAtTheInitialGuess) {
  DurationEstimator d(0.05, 0.5);
  EXPECT_DOUBLE_EQ(d.seconds(), 0.05);
  EXPECT_FALSE(d.has_samples());
  d.add_sample(-1);  // nonsense is ignored
  EXPECT_FALSE(d.has_samples());
  d.add_sample(0.2);
  EXPECT_TRUE(d.has_samples());
  EXPECT_DOUBLE_EQ(d.seconds(), 0.2);
  d.add_sample(0.1);
  EXPECT_DOUBLE_EQ(d.seconds(), 0.15);
}

}  // namespace
}  // namespace thaw::pool
