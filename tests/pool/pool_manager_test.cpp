// PoolManager end to end on /dev/kvm with the mini guest: templates, warm
// clones, identity, leases, reset in place, restart, delete.
#include "pool/pool_manager.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pool/clone_identity.h"
#include "pool/template_store.h"
#include "tests/kvm_vms_held.h"
#include "tests/pool/pool_test_support.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using namespace testing;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

ControlPage control_page(const PoolManager& pool, uint64_t lease) {
  auto bytes = pool.read_guest_memory(lease, kControlPageAddress, sizeof(ControlPage));
  ControlPage page;
  std::memcpy(&page, bytes.data(), sizeof page);
  return page;
}

// thaw.after=clone: the guest reads the control page, fills its clone
// buffer from clone_input (the seed) and exits cleanly (the clone pauses).
bool clone_buffer_is(const PoolManager& pool, uint64_t lease, uint64_t input) {
  return eventually([&] { return pool.read_guest_memory(lease, kCloneBuffer, kCloneBufferBytes) == expected_clone_buffer(input); },
                    20s);
}

TEST(PoolManager, CreateAcquireReleaseAcquireReusesTheResetClone) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  // max_warm with room for the returning clone: on a slow machine the
  // first lease may outlive a restore, the refill then restores up to the
  // autoscaler's target (2-4 there) while it is out, and a clone that comes
  // back to a full pool is destroyed, not reset (LeaseReturns pins that).
  auto info = pool.create_template(mini_spec("mini"), PoolPolicy{1, 8, 1024});
  EXPECT_EQ(info.name, "mini");
  EXPECT_EQ(info.snapshot_dir, dir.path() + "/templates/mini");
  EXPECT_GT(info.cold_boot_ms, 0);
  EXPECT_TRUE(fs::exists(info.snapshot_dir + "/state"));
  EXPECT_TRUE(fs::exists(info.snapshot_dir + "/" + kTemplateJsonName));
  EXPECT_FALSE(fs::exists(info.snapshot_dir + ".tmp"));
  ASSERT_TRUE(warm_at_least(pool, "mini", 1)) << "min_warm 1 never filled";

  auto first = pool.acquire("mini", 0, 10s);
  EXPECT_TRUE(first.timings.pool_hit);
  EXPECT_GT(first.lease_id, 0u);
  EXPECT_EQ(first.template_name, "mini");
  EXPECT_GT(first.expires_at, Clock::now() + 20s) << "default lease is 30 s";
  auto page = control_page(pool, first.lease_id);
  EXPECT_EQ(page.magic, kControlPageMagic);
  EXPECT_EQ(page.clone_id, first.identity.clone_id);
  EXPECT_EQ(page.seed, first.identity.seed);
  EXPECT_EQ(page.generation, first.identity.generation);
  EXPECT_EQ(page.wall_ns, first.identity.wall_ns);
  ASSERT_TRUE(clone_buffer_is(pool, first.lease_id, first.identity.seed)) << "the guest did not run with its identity";
  pool.release(first.lease_id);
  EXPECT_THROW(pool.lease_info(first.lease_id), NotFound);
  EXPECT_THROW(pool.release(first.lease_id), NotFound) << "a lease is released once";

  // The released clone is reset in place (the pool is below max_warm) and
  // handed out again: last in, first out.
  ASSERT_TRUE(eventually([&] { return stats_of(pool, "mini").resets >= 1; })) << "the clone was not reset";
  ASSERT_TRUE(warm_at_least(pool, "mini", 1));
  auto second = pool.acquire("mini", 5000, 10s);
  EXPECT_NE(second.identity.clone_id, first.identity.clone_id);
  EXPECT_NE(second.identity.seed, first.identity.seed);
  EXPECT_GT(second.identity.generation, first.identity.generation);
  ASSERT_TRUE(clone_buffer_is(pool, second.lease_id, second.identity.seed)) << "the reset clone did not run again";
  pool.release(second.lease_id);

  auto s = stats_of(pool, "mini");
  EXPECT_EQ(s.acquires, 2u);
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 0u);
  EXPECT_EQ(s.reset_failures, 0u);
  EXPECT_GE(s.restores, 1u);
  EXPECT_EQ(s.leased, 0u);
}

TEST(PoolManager, EmptyPoolAnswersOverloadedWithinTheTimeout) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("empty"), PoolPolicy{0, 0, 1024});
  for (auto timeout : {0ms, 300ms}) {
    auto start = Clock::now();
    EXPECT_THROW(pool.acquire("empty", 0, timeout), Overloaded);
    auto took = Clock::now() - start;
    EXPECT_GE(took, timeout);
    EXPECT_LT(took, timeout + 500ms) << "Overloaded must come at the timeout, not later";
  }
  auto s = stats_of(pool, "empty");
  EXPECT_EQ(s.overloaded, 2u);
  EXPECT_EQ(s.restores, 0u) << "max_warm 0: nothing is restored";
  EXPECT_EQ(s.target_warm, 0u);
}

TEST(PoolManager, TryAcquireTakesAWarmCloneAndNeverWaits) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  // A budget of one clone (5 MiB at the pool's first estimate of 4 + 1 MiB
  // each): once it is leased, no other is restored.
  pool.create_template(mini_spec("try"), PoolPolicy{1, 1, 5});
  ASSERT_TRUE(warm_at_least(pool, "try", 1));
  auto lease = pool.try_acquire("try", 0);
  ASSERT_TRUE(lease.has_value());
  EXPECT_TRUE(lease->timings.pool_hit);
  EXPECT_TRUE(clone_buffer_is(pool, lease->lease_id, lease->identity.seed)) << "the clone must be running";
  // The budget's one clone is leased: nothing to take, and no waiting.
  auto start = Clock::now();
  EXPECT_FALSE(pool.try_acquire("try", 0).has_value());
  EXPECT_LT(Clock::now() - start, 1s) << "far below any wait, and above a host stall";
  auto s = stats_of(pool, "try");
  EXPECT_EQ(s.acquires, 1u);
  EXPECT_EQ(s.misses, 0u) << "a try that found nothing is not a miss";
  EXPECT_EQ(s.overloaded, 0u);
  EXPECT_THROW(pool.try_acquire("nope", 0), NotFound);
  EXPECT_THROW(pool.try_acquire("try", 1ull << 40), BadArgument) << "a lease above the maximum";
}

TEST(PoolManager, ExpiredLeaseIsReclaimed) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("ttl"), PoolPolicy{1, 1, 1024});
  ASSERT_TRUE(warm_at_least(pool, "ttl", 1));
  // 1.5 s: short, yet long enough that a host stall does not end the lease
  // before the check that it is held.
  auto lease = pool.acquire("ttl", 1500, 10s);
  EXPECT_LE(lease.expires_at, Clock::now() + 1500ms);
  EXPECT_EQ(stats_of(pool, "ttl").leased, 1u);
  ASSERT_TRUE(eventually([&] { return stats_of(pool, "ttl").expired_leases == 1; }, 10s)) << "the lease never expired";
  EXPECT_THROW(pool.lease_info(lease.lease_id), NotFound);
  EXPECT_THROW(pool.renew(lease.lease_id, 1000), NotFound);
  EXPECT_EQ(stats_of(pool, "ttl").leased, 0u);
  // The pool is whole again and the next acquire works.
  ASSERT_TRUE(warm_at_least(pool, "ttl", 1));
  auto next = pool.acquire("ttl", 0, 10s);
  EXPECT_TRUE(clone_buffer_is(pool, next.lease_id, next.identity.seed));
}

TEST(PoolManager, StatsCountTheClonesPrivateMemory) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("mem"), PoolPolicy{1, 1, 1024});
  auto lease = pool.acquire("mem", 0, 20s);
  ASSERT_TRUE(clone_buffer_is(pool, lease.lease_id, lease.identity.seed));
  ASSERT_TRUE(warm_at_least(pool, "mem", 1));
  // Measured guest pages only (no estimate for KVM's own memory): the
  // leased guest's writes, its 64 KiB clone buffer at least.
  double guest_mib = 0;
  EXPECT_TRUE(eventually([&] {
    auto s = stats_of(pool, "mem");
    guest_mib = s.private_memory_mib;
    return guest_mib >= 64.0 / 1024;
  }, 5s)) << "guest-written private memory: " << guest_mib << " MiB";
  EXPECT_LT(guest_mib, 16) << "a 32 MiB clone that wrote 64 KiB is not using " << guest_mib << " MiB";
}

TEST(PoolManager, RenewMovesTheExpiry) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("renew"), PoolPolicy{1, 1, 1024});
  auto lease = pool.acquire("renew", 2000, 30s);  // renewed well within 2 s, even after a stall
  auto renewed = pool.renew(lease.lease_id, 60000);
  EXPECT_GT(renewed.expires_at, Clock::now() + 50s);
  EXPECT_EQ(pool.lease_info(lease.lease_id).expires_at, renewed.expires_at);
  std::this_thread::sleep_until(lease.expires_at + 500ms);
  EXPECT_NO_THROW(pool.lease_info(lease.lease_id)) << "a renewed lease must not expire at its old time";
  EXPECT_EQ(stats_of(pool, "renew").expired_leases, 0u);
}

TEST(PoolManager, TwoClonesGetDifferentIdentities) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("twins"), PoolPolicy{2, 2, 1024});
  ASSERT_TRUE(warm_at_least(pool, "twins", 2));
  auto a = pool.acquire("twins", 0, 10s);
  auto b = pool.acquire("twins", 0, 10s);
  auto pa = control_page(pool, a.lease_id);
  auto pb = control_page(pool, b.lease_id);
  EXPECT_EQ(pa.magic, kControlPageMagic);
  EXPECT_EQ(pb.magic, kControlPageMagic);
  EXPECT_NE(pa.clone_id, pb.clone_id);
  EXPECT_NE(pa.seed, pb.seed);
  EXPECT_NE(pa.generation, pb.generation);
  EXPECT_EQ(pa.seed, a.identity.seed);
  EXPECT_EQ(pb.seed, b.identity.seed);
  // Each guest computed from its own input.
  EXPECT_TRUE(clone_buffer_is(pool, a.lease_id, pa.seed));
  EXPECT_TRUE(clone_buffer_is(pool, b.lease_id, pb.seed));
}

TEST(PoolManager, TemplatesSurviveARestart) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  {
    PoolManager pool(test_config(dir));
    pool.create_template(mini_spec("keep"), PoolPolicy{1, 3, 512});
    ASSERT_TRUE(warm_at_least(pool, "keep", 1));
    pool.acquire("keep", 0, 10s);  // destroyed with the manager, leased or not
  }
  fs::create_directories(dir.path() + "/templates/half.tmp");  // a create that crashed
  PoolManager pool(test_config(dir));
  EXPECT_TRUE(pool.list_templates().empty());
  EXPECT_EQ(pool.load_existing_templates(), std::vector<std::string>{"keep"});
  EXPECT_TRUE(pool.load_existing_templates().empty()) << "loading again finds nothing new";
  EXPECT_FALSE(fs::exists(dir.path() + "/templates/half.tmp"));
  auto list = pool.list_templates();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].spec.cmdline, mini_spec("keep").cmdline);
  EXPECT_EQ(list[0].spec.mem_mib, 32u);
  EXPECT_EQ(list[0].policy.max_warm, 3u);
  EXPECT_EQ(list[0].policy.memory_budget_mib, 512u);
  EXPECT_GT(list[0].cold_boot_ms, 0);
  auto lease = pool.acquire("keep", 0, 20s);
  EXPECT_TRUE(clone_buffer_is(pool, lease.lease_id, lease.identity.seed));
  EXPECT_THROW(pool.create_template(mini_spec("keep"), PoolPolicy{}), BadArgument) << "the name is taken";
}

// A template whose record no longer matches its snapshot (edited, or a
// snapshot from another template copied in) is not loaded: its clones
// would get other RAM than the budget was set for.
TEST(PoolManager, ATemplateWhoseSnapshotDoesNotMatchItsRecordIsNotLoaded) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  {
    PoolManager pool(test_config(dir));
    pool.create_template(mini_spec("edited"), PoolPolicy{0, 1, 512});
  }
  const std::string json = dir.path() + "/templates/edited/" + kTemplateJsonName;
  std::ifstream in(json);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto record = decode_template_json(text);
  record.spec.mem_mib = 64;  // the snapshot has 32
  std::ofstream(json, std::ios::trunc) << encode_template_json(record);
  PoolManager pool(test_config(dir));
  EXPECT_TRUE(pool.load_existing_templates().empty());
  EXPECT_TRUE(pool.list_templates().empty());
}

// The memory file is checked against the state's chunk hashes when a
// template is loaded from disk: a flipped byte means no template, not
// clones that run on other bytes than were snapshotted.
TEST(PoolManager, ATemplateWhoseMemoryFileWasChangedIsNotLoaded) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  {
    PoolManager pool(test_config(dir));
    pool.create_template(mini_spec("flipped"), PoolPolicy{0, 1, 512});
  }
  const std::string memory = dir.path() + "/templates/flipped/memory";
  {
    std::fstream file(memory, std::ios::in | std::ios::out | std::ios::binary);
    file.seekg(0x100000);  // the kernel image
    char byte = 0;
    file.read(&byte, 1);
    byte = static_cast<char>(byte ^ 0x40);
    file.seekp(0x100000);
    file.write(&byte, 1);
  }
  PoolManager pool(test_config(dir));
  EXPECT_TRUE(pool.load_existing_templates().empty());
}

TEST(PoolManager, DeleteTemplateRemovesItsDirectoryAndLeases) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  auto info = pool.create_template(mini_spec("gone"), PoolPolicy{1, 2, 1024});
  auto lease = pool.acquire("gone", 0, 20s);
  pool.delete_template("gone");
  EXPECT_FALSE(fs::exists(info.snapshot_dir));
  EXPECT_TRUE(pool.list_templates().empty());
  EXPECT_THROW(pool.lease_info(lease.lease_id), NotFound);
  EXPECT_THROW(pool.release(lease.lease_id), NotFound);
  EXPECT_THROW(pool.acquire("gone", 0, 0ms), NotFound);
  EXPECT_THROW(pool.delete_template("gone"), NotFound);
  // The name can be used again.
  pool.create_template(mini_spec("gone"), PoolPolicy{0, 1, 1024});
  EXPECT_EQ(pool.list_templates().size(), 1u);
}

TEST(PoolManager, DeleteWakesAWaitingAcquire) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("wait"), PoolPolicy{0, 0, 1024});
  auto start = Clock::now();
  std::thread deleter([&] {
    std::this_thread::sleep_for(200ms);
    pool.delete_template("wait");
  });
  EXPECT_THROW(pool.acquire("wait", 0, 20s), NotFound);
  deleter.join();
  EXPECT_LT(Clock::now() - start, 5s);
}

TEST(PoolManager, BadArguments) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  EXPECT_THROW(pool.create_template(mini_spec("Bad Name"), PoolPolicy{}), BadArgument);
  auto no_kernel = mini_spec("nokernel");
  no_kernel.kernel = dir.path() + "/missing.elf";
  EXPECT_THROW(pool.create_template(no_kernel, PoolPolicy{}), BadArgument);
  EXPECT_THROW(pool.create_template(mini_spec("policy"), PoolPolicy{3, 1, 1024}), BadArgument);
  // A guest that faults before boot complete: refused, and nothing is left on disk.
  auto faulting = mini_spec("fault");
  faulting.cmdline += " thaw.fault=ud";
  try {
    pool.create_template(faulting, PoolPolicy{0, 1, 1024});
    ADD_FAILURE() << "a guest that never reaches boot complete became a template";
  } catch (const BadArgument& e) {
    EXPECT_NE(std::string(e.what()).find("boot-complete"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(dir.path() + "/templates/fault"));
  EXPECT_FALSE(fs::exists(dir.path() + "/templates/fault.tmp"));

  pool.create_template(mini_spec("ok"), PoolPolicy{1, 1, 1024});
  EXPECT_THROW(pool.create_template(mini_spec("ok"), PoolPolicy{}), BadArgument);
  EXPECT_THROW(pool.acquire("nope", 0, 10ms), NotFound);
  EXPECT_THROW(pool.acquire("ok", 3600001, 10ms), BadArgument) << "above max_lease_ms";
  EXPECT_THROW(pool.release(12345), NotFound);
  EXPECT_THROW(pool.renew(12345, 0), NotFound);
  EXPECT_THROW(pool.lease_info(12345), NotFound);
  EXPECT_THROW(pool.invoke(12345, "echo", {}, 1s), NotFound);
  EXPECT_THROW(pool.set_policy("nope", PoolPolicy{}), NotFound);
  EXPECT_THROW(pool.set_policy("ok", PoolPolicy{2, 1, 1}), BadArgument);
  EXPECT_THROW(pool.delete_template("nope"), NotFound);

  auto lease = pool.acquire("ok", 0, 20s);
  EXPECT_THROW(pool.renew(lease.lease_id, 3600001), BadArgument);
  EXPECT_THROW(pool.read_guest_memory(lease.lease_id, 1ull << 40, 16), BadArgument);
  EXPECT_THROW(pool.invoke(lease.lease_id, "", {}, 1s), BadArgument);
  EXPECT_THROW(pool.invoke(lease.lease_id, "echo", {}, 0ms), BadArgument);
  if (lease.vsock_path.empty()) {
    EXPECT_THROW(pool.invoke(lease.lease_id, "echo", {}, 1s), GuestGone);
    EXPECT_NO_THROW(pool.lease_info(lease.lease_id)) << "no vsock device is not the guest's fault";
  }
}

TEST(PoolManager, SetPolicyIsPersistedAndResizesThePool) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  PoolManager pool(test_config(dir));
  pool.create_template(mini_spec("resize"), PoolPolicy{0, 0, 1024});
  EXPECT_EQ(stats_of(pool, "resize").warm, 0u);
  pool.set_policy("resize", PoolPolicy{2, 4, 1024});
  ASSERT_TRUE(warm_at_least(pool, "resize", 2));
  EXPECT_EQ(TemplateStore(dir.path() + "/templates").read_record("resize").policy.min_warm, 2u);
  pool.set_policy("resize", PoolPolicy{0, 0, 1024});
  EXPECT_TRUE(eventually([&] { return stats_of(pool, "resize").warm == 0; }, 10s)) << "max_warm 0 keeps no clones";
  // Counted once the teardown ran, a moment after the clones left the pool.
  EXPECT_TRUE(eventually([&] { return stats_of(pool, "resize").destroyed >= 2; }, 10s))
      << "destroyed " << stats_of(pool, "resize").destroyed;
}

using thaw::testing::kvm_vms_held;

// Prepared VM shells, turned on here on any KVM: the first restore makes
// one for each clone the pool may make (max_warm), clones and shells
// together stay at that, a lower max_warm trims the surplus shells, and a
// deleted template leaves no VM behind.
TEST(PoolManager, PreparedShellsStayWithinThePolicy) {
  THAW_POOL_REQUIRE_KVM();
  TempDir dir;
  auto config = test_config(dir);
  config.vm_shells = VmShells::kOn;
  PoolManager pool(config);
  const size_t before = kvm_vms_held();
  pool.create_template(mini_spec("shells"), PoolPolicy{1, 6, 1024});
  ASSERT_TRUE(warm_at_least(pool, "shells", 1));
  EXPECT_TRUE(eventually([&] { return kvm_vms_held() - before == 6; }, 20s))
      << "want 6 VMs (clones + shells) for max_warm 6, hold " << kvm_vms_held() - before;
  pool.set_policy("shells", PoolPolicy{1, 2, 1024});
  EXPECT_TRUE(eventually([&] { return kvm_vms_held() - before == 2; }, 20s))
      << "want 2 VMs for max_warm 2, hold " << kvm_vms_held() - before << " (warm "
      << stats_of(pool, "shells").warm << ")";
  pool.delete_template("shells");
  EXPECT_TRUE(eventually([&] { return kvm_vms_held() == before; }, 20s))
      << "a deleted template still holds " << kvm_vms_held() - before << " VMs";
}

}  // namespace
}  // namespace thaw::pool
