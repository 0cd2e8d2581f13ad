// The warm surplus end to end on /dev/kvm with the mini guest. Released
// clones are reset and kept up to max_warm, so after a burst the pool holds
// more warm clones than the autoscaler's target. WarmPool::autoscale_tick
// keeps such a surplus for kSurplusTicks ticks, then trims a quarter of it
// (at least one clone) per tick down to the target; above max_warm or the
// memory budget it trims at once.
//
// Timing: the autoscaler ticks every kPeriod. The checks are on orderings,
// on values seen on the way, and on lower bounds of elapsed time (a busy
// machine only makes ticks later, never earlier); upper bounds are generous.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using Clock = std::chrono::steady_clock;
using Stats = PoolStats::PerTemplate;

constexpr std::chrono::milliseconds kPeriod = 100ms;  // autoscale_period
constexpr uint32_t kMaxWarm = 8;
constexpr uint32_t kBurst = 8;  // leases taken, then released at once
constexpr uint64_t kLeaseMs = 120000;

PoolManagerConfig surplus_config(const TempDir& dir) {
  auto config = test_config(dir);
  config.autoscale_period = kPeriod;
  // The burst's rate would otherwise raise the target by rate x stall and
  // leave less surplus to watch shrink.
  config.autoscale_stall = 0ms;
  return config;
}

struct Sample {
  Clock::time_point at;
  Stats stats;
};

// Samples the template's stats every millisecond until `done` holds for one
// (the last sample) or `timeout` passes.
std::vector<Sample> watch(const PoolManager& pool, const std::string& name,
                          const std::function<bool(const Stats&)>& done, std::chrono::milliseconds timeout) {
  std::vector<Sample> samples;
  auto deadline = Clock::now() + timeout;
  for (;;) {
    auto at = Clock::now();
    samples.push_back({at, stats_of(pool, name)});
    if (done(samples.back().stats) || at >= deadline) return samples;
    std::this_thread::sleep_for(1ms);
  }
}

std::string trace(const std::vector<Sample>& samples, Clock::time_point zero) {
  std::string out;
  std::optional<uint32_t> last;
  for (const auto& s : samples) {
    if (last == s.stats.warm) continue;
    last = s.stats.warm;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(s.at - zero).count();
    out += " " + std::to_string(s.stats.warm) + "@" + std::to_string(ms) + "ms(t" +
           std::to_string(s.stats.target_warm) + ")";
  }
  return out;
}

// Takes `n` leases one after another; each may wait for a restore.
std::vector<LeaseInfo> take_burst(PoolManager& pool, const std::string& name, uint32_t n) {
  std::vector<LeaseInfo> leases;
  for (uint32_t i = 0; i < n; ++i) leases.push_back(pool.acquire(name, kLeaseMs, 30s));
  return leases;
}

// Waits until the pool holds exactly its target and neither has moved for
// five ticks: the autoscaler then saw no surplus at its last ticks, so a
// surplus that comes after starts counting its ticks from zero.
bool settled(const PoolManager& pool, const std::string& name, Stats& out) {
  std::optional<Clock::time_point> since;
  uint32_t warm = 0, target = 0;
  return eventually(
      [&] {
        out = stats_of(pool, name);
        if (out.warm != out.target_warm || !since || out.warm != warm || out.target_warm != target) {
          since = Clock::now();
          warm = out.warm;
          target = out.target_warm;
          return false;
        }
        return Clock::now() - *since >= 5 * kPeriod;
      },
      30s);
}

// Burst, settle, release all: returns the samples from the release until
// warm reached max_warm (resets put the released clones back).
struct Surplus {
  Stats before;  // settled, all leases out
  Clock::time_point released_at;
  std::vector<Sample> rise;
};

Surplus make_surplus(PoolManager& pool, const std::string& name) {
  Surplus s;
  auto leases = take_burst(pool, name, kBurst);
  EXPECT_TRUE(settled(pool, name, s.before)) << "warm " << s.before.warm << ", target " << s.before.target_warm;
  EXPECT_EQ(s.before.leased, kBurst);
  s.released_at = Clock::now();
  for (const auto& lease : leases) pool.release(lease.lease_id);
  s.rise = watch(pool, name, [](const Stats& st) { return st.warm >= kMaxWarm; }, 10s);
  return s;
}

uint32_t peak_of(const std::vector<Sample>& samples) {
  uint32_t peak = 0;
  for (const auto& s : samples) peak = std::max(peak, s.stats.warm);
  return peak;
}

// Each test: one template of the mini guest, min_warm 1, max_warm kMaxWarm,
// with a clone warm before it starts.
class WarmSurplus : public ::testing::Test {
 protected:
  void start(const std::string& name) {
    pool_.emplace(surplus_config(dir_));
    pool_->create_template(mini_spec(name), PoolPolicy{1, kMaxWarm, 1024});
    ASSERT_TRUE(warm_at_least(*pool_, name, 1));
  }

  TempDir dir_;
  std::optional<PoolManager> pool_;  // declared after dir_: goes first
};

TEST_F(WarmSurplus, ShrinksGraduallyAfterItLastedAFewTicks) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("shrink"));
  PoolManager& pool = *pool_;
  auto surplus = make_surplus(pool, "shrink");
  ASSERT_FALSE(HasFailure());
  const Stats& before = surplus.before;
  const auto zero = surplus.released_at;
  ASSERT_LE(before.target_warm + 3, kMaxWarm) << "the target should be well below max_warm once traffic stopped";
  ASSERT_GE(surplus.rise.back().stats.warm, kMaxWarm) << "released clones are kept up to max_warm:"
                                                      << trace(surplus.rise, zero);
  auto fall = watch(pool, "shrink", [](const Stats& st) { return st.warm <= st.target_warm; }, 20s);
  auto all = surplus.rise;
  all.insert(all.end(), fall.begin(), fall.end());
  const std::string seen = trace(all, zero);
  std::printf("warm after the release (value@time(target)):%s\n", seen.c_str());
  const Stats& end = fall.back().stats;
  ASSERT_LE(end.warm, end.target_warm) << "the surplus never went:" << seen;
  const uint32_t final_warm = end.warm;

  // Down to the target, which is at least min_warm, and well below the peak.
  EXPECT_EQ(final_warm, end.target_warm) << seen;
  EXPECT_GE(final_warm, 1u) << "min_warm is 1: " << seen;
  EXPECT_LE(final_warm + 2, kMaxWarm) << seen;
  EXPECT_EQ(peak_of(all), kMaxWarm) << "the surplus reaches max_warm and never more: " << seen;

  // From the peak on, warm only goes down (a surplus is not refilled).
  auto peak_at = std::find_if(all.begin(), all.end(), [](const Sample& s) { return s.stats.warm >= kMaxWarm; });
  ASSERT_NE(peak_at, all.end());
  for (auto it = peak_at; it + 1 != all.end(); ++it) {
    ASSERT_LE((it + 1)->stats.warm, it->stats.warm) << "warm went up during the shrink: " << seen;
  }
  // Kept for a few ticks first: the pool had no surplus when the leases
  // were released, so the 4th tick after that is the first that trims
  // (three periods at least; two asked for).
  auto first_trim = std::find_if(peak_at, all.end(), [](const Sample& s) { return s.stats.warm < kMaxWarm; });
  ASSERT_NE(first_trim, all.end());
  EXPECT_GE(first_trim->at - zero, 2 * kPeriod) << "the surplus was trimmed before it lasted a few ticks: " << seen;

  // Not at once: values strictly between the peak and the target were seen...
  std::set<uint32_t> between;
  for (auto it = peak_at; it != all.end(); ++it) {
    if (it->stats.warm > final_warm && it->stats.warm < kMaxWarm) between.insert(it->stats.warm);
  }
  EXPECT_FALSE(between.empty()) << "the surplus went from " << kMaxWarm << " to " << final_warm
                                << " in one step: " << seen;
  // ...and one clone per tick (a quarter of a surplus below 8 rounds down
  // to the minimum of one), so the way down lasted a tick per clone after
  // the first: half of that asked for.
  auto last_at_peak = std::find_if(all.rbegin(), all.rend(), [](const Sample& s) { return s.stats.warm >= kMaxWarm; });
  auto steps = static_cast<int>(kMaxWarm - final_warm);
  EXPECT_GE(fall.back().at - last_at_peak->at, (steps - 1) * kPeriod / 2)
      << "the surplus shrank faster than one clone per tick: " << seen;

  // The trimmed clones are destroyed: every clone there was when the leases
  // went back is warm now or destroyed; none was restored meanwhile.
  Stats now;
  EXPECT_TRUE(eventually([&] {
    now = stats_of(pool, "shrink");
    return now.destroyed - before.destroyed + now.warm == before.warm + kBurst + (now.restores - before.restores);
  }, 5s)) << "destroyed " << before.destroyed << " -> " << now.destroyed << ", warm " << before.warm << " -> "
          << now.warm << ", restores " << before.restores << " -> " << now.restores;
  EXPECT_EQ(now.restores, before.restores) << "a surplus is never refilled";
  EXPECT_GE(now.destroyed - before.destroyed, kMaxWarm - final_warm);
  EXPECT_EQ(now.reset_failures, 0u);

  // And it stays there: nothing is restored above it, nothing trimmed below
  // the target. The target itself may still fall by one meanwhile: the
  // smoothed rate of the burst reads as zero some ticks after it (later on
  // a loaded machine, where the burst and the settling took longer).
  auto after = watch(pool, "shrink", [](const Stats&) { return false; }, 5 * kPeriod);
  for (const auto& s : after) {
    ASSERT_LE(s.stats.warm, final_warm) << "after the shrink:" << trace(after, zero);
    ASSERT_LE(s.stats.target_warm, final_warm) << "after the shrink:" << trace(after, zero);
    ASSERT_GE(s.stats.warm, s.stats.target_warm) << "after the shrink:" << trace(after, zero);
    ASSERT_GE(s.stats.warm, 1u) << "min_warm is 1, after the shrink:" << trace(after, zero);
  }
  EXPECT_EQ(after.back().stats.restores, now.restores) << "restored after the shrink";
}

// After the surplus formed, set_policy lowers max_warm or the budget below
// it: the next tick trims to the new bound at once (no values on the way),
// and nothing is kept or restored above it after.
void expect_trimmed_at_once(PoolManager& pool, const std::string& name, const PoolPolicy& lower, uint32_t bound) {
  auto surplus = make_surplus(pool, name);
  ASSERT_FALSE(::testing::Test::HasFailure());
  const auto zero = surplus.released_at;
  const Stats& peak = surplus.rise.back().stats;
  ASSERT_EQ(peak.warm, kMaxWarm) << trace(surplus.rise, zero);
  ASSERT_GT(peak.warm, bound + 2);

  pool.set_policy(name, lower);
  auto returned_at = Clock::now();
  auto drop = watch(pool, name, [&](const Stats& st) { return st.warm <= bound; }, 5s);
  const std::string seen = trace(surplus.rise, zero) + " | set_policy@" +
                           std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(returned_at - zero).count()) +
                           "ms |" + trace(drop, zero);
  ASSERT_LE(drop.back().stats.warm, bound) << "not trimmed to the new bound: " << seen;
  // The first sample may still show the surplus (no tick yet), or one less
  // if the gradual trim ticked just before set_policy took effect; after
  // that the next value is within the bound.
  const uint32_t first = drop.front().stats.warm;
  for (const auto& s : drop) {
    EXPECT_TRUE(s.stats.warm == first || s.stats.warm <= bound) << "trimmed step by step, not at once: " << seen;
  }
  EXPECT_LT(drop.back().at - returned_at, 2s) << "a tick or two, not seconds: " << seen;
  Stats now;
  EXPECT_TRUE(eventually([&] {
    now = stats_of(pool, name);
    return now.destroyed - peak.destroyed >= kMaxWarm - bound;
  }, 5s)) << "destroyed " << peak.destroyed << " -> " << now.destroyed << ": " << seen;

  // Then down to the (new) target; never above the bound again.
  auto rest = watch(pool, name, [](const Stats& st) { return st.warm == st.target_warm; }, 5s);
  std::printf("warm after the release:%s |%s\n", seen.c_str(), trace(rest, zero).c_str());
  for (const auto& s : rest) ASSERT_LE(s.stats.warm, bound) << seen << " |" << trace(rest, zero);
  EXPECT_EQ(rest.back().stats.warm, rest.back().stats.target_warm) << seen << " |" << trace(rest, zero);
  EXPECT_LE(rest.back().stats.target_warm, bound);
}

TEST_F(WarmSurplus, LoweringMaxWarmTrimsAtOnce) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("cap"));
  PoolManager& pool = *pool_;
  expect_trimmed_at_once(pool, "cap", PoolPolicy{1, 3, 1024}, 3);
  auto list = pool.list_templates();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].policy.max_warm, 3u);
}

TEST_F(WarmSurplus, LoweringTheBudgetTrimsAtOnce) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("budget"));
  PoolManager& pool = *pool_;
  // At least 5 MiB per clone (a 4 MiB first estimate or the measured peak,
  // plus 1 MiB for KVM's own): 15 MiB are three clones at most.
  expect_trimmed_at_once(pool, "budget", PoolPolicy{1, kMaxWarm, 15}, 3);
}

// The point of keeping a surplus: when traffic comes back within a few
// ticks, it finds warm clones without waiting for restores.
TEST_F(WarmSurplus, ReturningTrafficTakesTheSurplusWithoutWaiting) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("again"));
  PoolManager& pool = *pool_;
  auto surplus = make_surplus(pool, "again");
  ASSERT_FALSE(HasFailure());
  const Stats& peak = surplus.rise.back().stats;
  ASSERT_EQ(peak.warm, kMaxWarm) << trace(surplus.rise, surplus.released_at);
  ASSERT_LE(surplus.before.target_warm + 3, kMaxWarm);
  // Traffic comes back two ticks after the release: the surplus is kept
  // for four (the 4th trims one clone, and one per tick after that), so
  // six clones are there for a while yet. (Trimmed at the first tick, the
  // pool would be down to its target of two by now.)
  std::this_thread::sleep_until(surplus.released_at + 2 * kPeriod);
  const uint32_t again = kMaxWarm - 2;
  std::set<uint64_t> ids;
  for (uint32_t i = 0; i < again; ++i) {
    auto lease = pool.try_acquire("again", kLeaseMs);
    if (!lease) break;
    EXPECT_TRUE(lease->timings.pool_hit);
    ids.insert(lease->lease_id);
  }
  // Usually all six. A host stall that delays this thread past the 4th tick
  // lets the trim take one clone per tick meanwhile, but more than the
  // target's worth must still have been there.
  const auto got = static_cast<uint32_t>(ids.size());
  EXPECT_GT(got, surplus.before.target_warm) << "the surplus was gone " << 2 * kPeriod.count()
                                            << " ms after the release; warm was " << kMaxWarm << " then";
  auto s = stats_of(pool, "again");
  EXPECT_EQ(s.hits - peak.hits, got);
  EXPECT_EQ(s.misses, peak.misses);
  EXPECT_EQ(s.leased, got);
}

}  // namespace
}  // namespace thaw::pool
