// The acquire path with a warm pool: pop, identity, resume, lease. Prints
// p50/p99 over 200 acquires; fails only on an order-of-magnitude regression
// (timings on shared 2-core machines are noisy; the bench owns the numbers).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using Clock = std::chrono::steady_clock;

TEST(AcquireLatency, WarmPoolHitIsFast) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("fast", "idle"), PoolPolicy{2, 4, 1024});
  constexpr int kRounds = 200;
  std::vector<double> in_call_us, reported_us;
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(warm_at_least(pool, "fast", 2)) << "round " << i;
    auto start = Clock::now();
    auto lease = pool.acquire("fast", 0, 5s);
    in_call_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    reported_us.push_back(lease.timings.acquire_ms * 1000);
    ASSERT_TRUE(lease.timings.pool_hit);
    pool.release(lease.lease_id);
  }
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
  };
  std::printf("acquire latency over %d warm hits: p50 %.1f us, p99 %.1f us, max %.1f us (to resume: p50 %.1f us)\n",
              kRounds, pct(in_call_us, 0.5), pct(in_call_us, 0.99), pct(in_call_us, 1.0), pct(reported_us, 0.5));
  auto s = stats_of(pool, "fast");
  std::printf("restores %llu, resets %llu, destroyed %llu\n", static_cast<unsigned long long>(s.restores),
              static_cast<unsigned long long>(s.resets), static_cast<unsigned long long>(s.destroyed));
  EXPECT_LT(pct(in_call_us, 0.5), 2000) << "target p50 is 200 us";
  EXPECT_GT(s.resets, static_cast<uint64_t>(kRounds / 2)) << "steady traffic should run on resets, not restores";
}

}  // namespace
}  // namespace thaw::pool
