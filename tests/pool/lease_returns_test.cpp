// The refill does not restore a clone when the clones coming back from
// short leases would then find no room below max_warm: steady traffic
// runs on resets instead of restoring a clone for every acquire and
// destroying one for every release, from the first lease on. Long leases
// and waiting acquirers still get restores.
#include <gtest/gtest.h>

#include <memory>
#include <thread>

#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using Stats = PoolStats::PerTemplate;

class LeaseReturns : public ::testing::Test {
 protected:
  // A pool of the idle mini guest with `policy`, `warm` clones warm.
  void start(const std::string& name, PoolPolicy policy, uint32_t warm = 1) {
    pool_ = std::make_unique<PoolManager>(test_config(dir_));
    pool_->create_template(mini_spec(name, "idle"), policy);
    ASSERT_TRUE(warm_at_least(*pool_, name, warm));
  }
  TempDir dir_;
  std::unique_ptr<PoolManager> pool_;
};

// min = max = 2: every acquire leaves the pool below its target, and the
// returning clone needs the slot a restore would take.
TEST_F(LeaseReturns, ShortLeasesAreWaitedForNotRestoredFor) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("short", PoolPolicy{2, 2, 1024}, 2));
  PoolManager& pool = *pool_;
  const Stats before = stats_of(pool, "short");
  constexpr uint64_t kRounds = 30;
  for (uint64_t i = 0; i < kRounds; ++i) {
    ASSERT_TRUE(warm_at_least(pool, "short", 2)) << "round " << i;
    auto lease = pool.acquire("short", 0, 5s);
    pool.release(lease.lease_id);
  }
  ASSERT_TRUE(warm_at_least(pool, "short", 2));
  const Stats after = stats_of(pool, "short");
  const uint64_t restores = after.restores - before.restores;
  const uint64_t destroyed = after.destroyed - before.destroyed;
  // A lease that outlives a restore on a busy machine may still be
  // restored for (and its clone destroyed).
  EXPECT_LE(restores, 3u) << "a restore per acquire would be " << kRounds << "; destroyed " << destroyed;
  EXPECT_LE(destroyed, 3u);
  EXPECT_GE(after.resets - before.resets, kRounds - 3);
  EXPECT_EQ(after.misses, before.misses);
}

// Before any lease has returned nothing is known of lease lengths, yet a
// first lease still younger than a restore counts as coming back: the
// refill does not fill the pool's last slot for it, and the returning
// clone is reset, not destroyed.
TEST_F(LeaseReturns, AFirstShortLeaseIsWaitedForToo) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("first", PoolPolicy{2, 2, 1024}, 2));
  const Stats before = stats_of(*pool_, "first");
  pool_->release(pool_->acquire("first", 0, 5s).lease_id);
  auto handled = [&] {
    const Stats now = stats_of(*pool_, "first");
    return now.resets + now.destroyed > before.resets + before.destroyed;
  };
  ASSERT_TRUE(eventually(handled, 10s)) << "the returned clone was neither reset nor destroyed";
  ASSERT_TRUE(warm_at_least(*pool_, "first", 2));
  const Stats after = stats_of(*pool_, "first");
  EXPECT_EQ(after.destroyed, before.destroyed) << "the first returning clone found its slot taken";
  EXPECT_EQ(after.resets, before.resets + 1);
  EXPECT_EQ(after.restores, before.restores) << "a restore replaced a clone that was coming back";
}

// A lease held far longer than a restore takes does not hold up the refill,
// although its clone would need the pool's one slot when it came back.
TEST_F(LeaseReturns, LongLeasesAreRestoredFor) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("long", PoolPolicy{1, 1, 1024}));
  PoolManager& pool = *pool_;
  auto first = pool.acquire("long", 0, 5s);
  std::this_thread::sleep_for(1500ms);  // the lease length the pool learns
  pool.release(first.lease_id);
  // A clone restored meanwhile holds the one slot: the returned one goes.
  ASSERT_TRUE(eventually([&] { return stats_of(pool, "long").destroyed == 1; }, 10s));
  ASSERT_TRUE(warm_at_least(pool, "long", 1));
  const uint64_t restores = stats_of(pool, "long").restores;
  auto held = pool.acquire("long", 0, 5s);
  // The held clone counts as a twentieth of a clone at most: min_warm asks
  // for a restore, which comes while it is still leased.
  EXPECT_TRUE(eventually([&] { return stats_of(pool, "long").restores > restores; }, 10s))
      << "the refill waited for a long lease to end";
  EXPECT_TRUE(warm_at_least(pool, "long", 1, 10s));
  EXPECT_EQ(stats_of(pool, "long").leased, 1u);
  pool.release(held.lease_id);
}

// Leases have been short, yet an acquirer that finds the pool empty gets a
// restore at once instead of waiting for a return that may not come.
TEST_F(LeaseReturns, AWaitingAcquirerGetsARestore) {
  THAW_POOL_REQUIRE_KVM();
  ASSERT_NO_FATAL_FAILURE(start("wait", PoolPolicy{1, 1, 1024}));
  PoolManager& pool = *pool_;
  for (int i = 0; i < 3; ++i) {  // short leases: the pool expects returns
    ASSERT_TRUE(warm_at_least(pool, "wait", 1));
    pool.release(pool.acquire("wait", 0, 5s).lease_id);
  }
  ASSERT_TRUE(warm_at_least(pool, "wait", 1));
  auto held = pool.acquire("wait", 0, 5s);
  // The held clone is expected back soon, so no restore replaces it...
  const uint64_t restores = stats_of(pool, "wait").restores;
  // ...until this acquire waits: it must get a clone well within its timeout.
  LeaseInfo second;
  ASSERT_NO_THROW(second = pool.acquire("wait", 0, 20s)) << "the waiting acquire got no restore";
  EXPECT_FALSE(second.timings.pool_hit);
  EXPECT_GT(stats_of(pool, "wait").restores, restores);
  pool.release(held.lease_id);
  pool.release(second.lease_id);
}

}  // namespace
}  // namespace thaw::pool
