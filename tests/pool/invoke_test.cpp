// invoke() through a clone's virtio-vsock device to the mini guest's agent
// (thaw.after=agent). Skips where this build has no vsock device.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>

#include "pool/clone.h"
#include "pool/invoke_protocol.h"
#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using Clock = std::chrono::steady_clock;

std::vector<uint8_t> u64_bytes(uint64_t v) {
  std::vector<uint8_t> out(8);
  std::memcpy(out.data(), &v, 8);
  return out;
}

uint64_t u64_at(const std::vector<uint8_t>& bytes, size_t index) {
  uint64_t v = 0;
  if (bytes.size() >= (index + 1) * 8) std::memcpy(&v, bytes.data() + index * 8, 8);
  return v;
}

class PoolInvoke : public ::testing::Test {
 protected:
  void SetUp() override {
    THAW_POOL_REQUIRE_KVM();
    pool_ = std::make_unique<PoolManager>(test_config(dir_));
    auto spec = mini_spec("agent", "agent");
    spec.cmdline = "console=ttyS0 thaw.fn_bytes=4096 thaw.quiet=1 thaw.after=agent";
    pool_->create_template(spec, PoolPolicy{1, 3, 1024});  // room for a released clone
  }
  TempDir dir_;
  std::unique_ptr<PoolManager> pool_;
};

TEST_F(PoolInvoke, EchoAndIdentityThenAgainAfterAReset) {
  auto lease = pool_->acquire("agent", 0, 30s);
  ASSERT_FALSE(lease.vsock_path.empty());
  EXPECT_EQ(lease.vsock_path.rfind(dir_.path() + "/vsock/agent-", 0), 0u) << lease.vsock_path;
  std::vector<uint8_t> payload{'h', 'e', 'l', 'l', 'o', 0, 255};
  auto echo = pool_->invoke(lease.lease_id, "echo", payload, 10s);
  EXPECT_EQ(echo.status, kInvokeOk);
  EXPECT_EQ(echo.payload, payload);
  EXPECT_GT(echo.total_ms, 0);
  auto id = pool_->invoke(lease.lease_id, "identity", {}, 10s);
  ASSERT_EQ(id.status, kInvokeOk);
  EXPECT_EQ(u64_at(id.payload, 0), lease.identity.generation);
  EXPECT_EQ(u64_at(id.payload, 1), lease.identity.clone_id);
  EXPECT_EQ(u64_at(id.payload, 2), lease.identity.seed);
  auto unknown = pool_->invoke(lease.lease_id, "no-such-function", {}, 10s);
  EXPECT_EQ(unknown.status, kInvokeUnknownFunction);
  auto hash = pool_->invoke(lease.lease_id, "hash", u64_bytes(4096), 10s);
  EXPECT_EQ(u64_at(hash.payload, 0), 0xc43309b99f626325ULL);
  std::vector<double> ms;
  for (int i = 0; i < 20; ++i) ms.push_back(pool_->invoke(lease.lease_id, "echo", payload, 10s).total_ms);
  std::sort(ms.begin(), ms.end());
  std::printf("invoke echo (connect + CONNECT/OK + request + response), 20 calls: p50 %.3f ms, max %.3f ms\n",
              ms[ms.size() / 2], ms.back());
  pool_->release(lease.lease_id);

  // The reset clone (same VM, same socket) answers with its new identity.
  // It is usually the next one handed out (last in, first out), unless a
  // refill finished after it came back: take clones until it shows up.
  ASSERT_TRUE(eventually([&] { return stats_of(*pool_, "agent").resets >= 1; }));
  std::vector<LeaseInfo> others;
  LeaseInfo again = pool_->acquire("agent", 0, 30s);
  while (again.vsock_path != lease.vsock_path && others.size() < 3) {
    others.push_back(again);
    again = pool_->acquire("agent", 0, 30s);
  }
  ASSERT_EQ(again.vsock_path, lease.vsock_path) << "the reset clone never came back to the pool";
  auto id2 = pool_->invoke(again.lease_id, "identity", {}, 10s);
  ASSERT_EQ(id2.status, kInvokeOk);
  EXPECT_EQ(u64_at(id2.payload, 1), again.identity.clone_id);
  EXPECT_EQ(u64_at(id2.payload, 2), again.identity.seed);
}

TEST_F(PoolInvoke, CrashedGuestIsGoneAndItsCloneDestroyed) {
  auto lease = pool_->acquire("agent", 0, 30s);
  EXPECT_THROW(pool_->invoke(lease.lease_id, "crash", {}, 10s), GuestGone);
  EXPECT_THROW(pool_->lease_info(lease.lease_id), NotFound) << "the lease ends with its guest";
  EXPECT_TRUE(eventually([&] { return stats_of(*pool_, "agent").destroyed >= 1; }, 10s));
  EXPECT_EQ(stats_of(*pool_, "agent").leased, 0u);
  // The pool carries on.
  auto next = pool_->acquire("agent", 0, 30s);
  EXPECT_EQ(pool_->invoke(next.lease_id, "echo", {1}, 10s).payload, std::vector<uint8_t>{1});
}

TEST_F(PoolInvoke, SlowGuestTimesOutAsGuestGone) {
  auto lease = pool_->acquire("agent", 0, 30s);
  auto start = Clock::now();
  EXPECT_THROW(pool_->invoke(lease.lease_id, "sleep", u64_bytes(5000), 300ms), GuestGone);
  EXPECT_LT(Clock::now() - start, 2s);
  EXPECT_THROW(pool_->lease_info(lease.lease_id), NotFound);
}

TEST_F(PoolInvoke, ReleaseCutsAnInvokeShort) {
  auto lease = pool_->acquire("agent", 0, 30s);
  // The release comes 1 s into a 20 s guest sleep: the invoke is in flight
  // by then even when the host stalls this thread for a while.
  std::thread releaser([&] {
    std::this_thread::sleep_for(1s);
    pool_->release(lease.lease_id);
  });
  auto start = Clock::now();
  EXPECT_THROW(pool_->invoke(lease.lease_id, "sleep", u64_bytes(20000), 60s), GuestGone);
  releaser.join();
  EXPECT_LT(Clock::now() - start, 10s) << "the release must cut the 20 s invoke short";
  // Released, not crashed: the clone is reset and kept (below max_warm).
  EXPECT_TRUE(eventually([&] { return stats_of(*pool_, "agent").resets >= 1; }, 10s));
  EXPECT_EQ(stats_of(*pool_, "agent").reset_failures, 0u);
}

// Clones restored on several refill threads at once (the default on a
// multi-core host) are whole clones: each answers, with its own identity
// and its own vsock socket, and the pool stops at what it wants.
TEST(PoolParallelRefill, ClonesRestoredTogetherEachAnswerAsThemselves) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  auto config = test_config(dir);
  config.refill_threads = 3;
  PoolManager pool(config);
  auto spec = mini_spec("par", "agent");
  constexpr uint32_t kClones = 6;
  pool.create_template(spec, PoolPolicy{kClones, kClones, 1024});
  ASSERT_TRUE(warm_at_least(pool, "par", kClones, 120s)) << "warm: " << stats_of(pool, "par").warm;
  std::vector<LeaseInfo> leases;
  for (uint32_t i = 0; i < kClones; ++i) leases.push_back(pool.acquire("par", 0, 30s));
  std::set<uint64_t> ids;
  std::set<std::string> sockets;
  for (const auto& lease : leases) {
    auto id = pool.invoke(lease.lease_id, "identity", {}, 10s);
    ASSERT_EQ(id.status, kInvokeOk);
    EXPECT_EQ(u64_at(id.payload, 1), lease.identity.clone_id);
    EXPECT_EQ(u64_at(id.payload, 2), lease.identity.seed);
    ids.insert(lease.identity.clone_id);
    sockets.insert(lease.vsock_path);
    auto hash = pool.invoke(lease.lease_id, "hash", u64_bytes(4096), 10s);
    EXPECT_EQ(u64_at(hash.payload, 0), 0xc43309b99f626325ULL);
  }
  EXPECT_EQ(ids.size(), kClones);
  EXPECT_EQ(sockets.size(), kClones);
  auto stats = stats_of(pool, "par");
  EXPECT_EQ(stats.restore_failures, 0u);
  for (const auto& lease : leases) pool.release(lease.lease_id);
}

}  // namespace
}  // namespace thaw::pool
