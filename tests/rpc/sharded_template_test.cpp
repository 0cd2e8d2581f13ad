// A template spread over several worker processes through the real thawd
// (clones_per_worker, pool/pool_shard.h): a pool of max_warm 4 with
// clones_per_worker 2 runs as two sandboxed workers, each told its shard;
// acquires take turns between them (clone ids are odd in the first, even in
// the second); listTemplates and stats show one template with the shards
// added up; a killed shard takes only its own leases, and a new worker
// takes its place.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <vector>
#include <thread>

#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"
#include "pool/pool_shard.h"
#include "rpc/daemon/worker_limits.h"
#include "tests/kvm_vms_held.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/scratch_cgroup.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Children of `parent` whose command line has "--shard K/N": K/N -> pid.
std::map<std::string, pid_t> shard_workers(pid_t parent) {
  std::map<std::string, pid_t> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const std::string status = read_whole_file(e.path() / "status");
    if (status.find("PPid:\t" + std::to_string(parent) + "\n") == std::string::npos) continue;
    std::string cmdline = read_whole_file(e.path() / "cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    const size_t at = cmdline.find("--shard ");
    if (at == std::string::npos) continue;
    const size_t from = at + 8;
    out[cmdline.substr(from, cmdline.find(' ', from) - from)] = static_cast<pid_t>(std::stol(name));
  }
  return out;
}

struct Listed {
  uint32_t warm = 0, leased = 0, workers = 0, max_warm = 0;
  bool found = false;
  std::string shard, direct_socket;
  std::vector<std::string> shard_sockets;
};

Listed listed(rpc::PoolConnection& c, const std::string& name) {
  Listed out;
  auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
  for (auto t : list.getTemplates()) {
    if (t.getName() != name.c_str()) continue;
    out = {t.getWarm(), t.getLeased(), t.getWorkers(), t.getPolicy().getMaxWarm(), true,
           t.getShard().cStr(),  t.getDirectSocket().cStr(), {}};
    for (auto path : t.getShardSockets()) out.shard_sockets.emplace_back(path.cStr());
  }
  return out;
}

// setPolicy of `name` to min_warm..max_warm within budget_mib; throws what thawd answers.
void set_policy(rpc::PoolConnection& c, const std::string& name, uint32_t min_warm, uint32_t max_warm,
                uint64_t budget_mib = 1024) {
  auto set = c.pool().setPolicyRequest();
  set.setName(name);
  set.initPolicy().setMinWarm(min_warm);
  set.getPolicy().setMaxWarm(max_warm);
  set.getPolicy().setMemoryBudgetMib(budget_mib);
  set.send().wait(c.wait_scope());
}

// The worker thawd (`parent`) started for shard `key` after `gone` ended;
// 0 if none within a minute.
pid_t replaced_worker(pid_t parent, const std::string& key, pid_t gone) {
  for (auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline;) {
    auto now = shard_workers(parent);
    if (now.contains(key) && now[key] != gone) return now[key];
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return 0;
}

uint64_t clone_id(rpc::PoolConnection& c, rpc::schema::Vm::Client& vm) {
  return vm.infoRequest().send().wait(c.wait_scope()).getCloneId();
}

class ShardedTemplate : public ::testing::Test {
 protected:
  void SetUp() override {
    THAW_REQUIRE_KVM();
    start("");
  }
  // thawd with template "big" (2..4 warm in 1 GiB) over two workers, plus
  // `more_config`; returns once both shards hold warm clones.
  void start(const std::string& more_config) {
    daemon_.write_config(daemon_.config_text({big_}, "clones_per_worker = 2\n" + more_config));
    ASSERT_TRUE(daemon_.start(std::chrono::seconds(120))) << daemon_.log();
    // Shard 2 starts once shard 1 has made the template: wait for both to
    // hold warm clones.
    rpc::PoolConnection c(daemon_.socket());
    for (auto deadline = Clock::now() + std::chrono::seconds(120); Clock::now() < deadline;) {
      if (listed(c, "big").warm >= 2 && shard_workers(daemon_.pid()).size() == 2) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void TearDown() override {
    if (daemon_.pid() <= 0) return;
    int status = daemon_.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "thawd exit status " << status << "\n"
                                                               << daemon_.log();
  }

  static daemon::PoolConfig big_pool() {
    auto big = mini_pool("big");
    big.policy = pool::PoolPolicy{2, 4, 1024};
    return big;
  }

  const daemon::PoolConfig big_ = big_pool();
  TempDir scratch_{"thaw-rpc-shards"};
  ThawdProcess daemon_{scratch_.path()};
};

TEST_F(ShardedTemplate, TwoWorkersServeOneTemplateInTurnAndAreListedAsOne) {
  auto workers = shard_workers(daemon_.pid());
  ASSERT_EQ(workers.size(), 2u) << daemon_.log();
  ASSERT_TRUE(workers.contains("1/2") && workers.contains("2/2")) << daemon_.log();
  EXPECT_NE(daemon_.log().find("template 'big': spread over 2 worker processes (max_warm 4, clones_per_worker 2)"),
            std::string::npos)
      << daemon_.log();
  EXPECT_NE(daemon_.log().find("[worker big 2/2]"), std::string::npos) << daemon_.log();

  rpc::PoolConnection c(daemon_.socket());
  Listed before = listed(c, "big");
  ASSERT_TRUE(before.found);
  EXPECT_EQ(before.workers, 2u);
  EXPECT_EQ(before.max_warm, 4u) << "the template's policy, not one shard's share";
  EXPECT_EQ(before.shard, "") << "thawd's answer covers the whole template";
  EXPECT_GE(before.warm, 2u);
  EXPECT_LE(before.warm, 4u);

  // Two acquires in a row go to different shards: one odd and one even clone id.
  auto first = acquire(c, "big");
  auto second = acquire(c, "big");
  const uint64_t a = clone_id(c, first), b = clone_id(c, second);
  EXPECT_NE(a % 2, b % 2) << "clone ids " << a << " and " << b << " came from the same shard";
  EXPECT_EQ(invoke_echo(c, first, "one"), "one");
  EXPECT_EQ(invoke_echo(c, second, "two"), "two");
  EXPECT_EQ(listed(c, "big").leased, 2u);

  auto stats = c.pool().statsRequest().send().wait(c.wait_scope()).getStats();
  ASSERT_EQ(stats.getTemplates().size(), 1u) << "the shards are one template in stats";
  EXPECT_EQ(stats.getTemplates()[0].getName(), "big");
  EXPECT_GE(stats.getTemplates()[0].getAcquires(), 2u);
  EXPECT_EQ(stats.getTemplates()[0].getLeased(), 2u);
  EXPECT_EQ(stats.getTemplates()[0].getShard(), "");

  // The direct socket is answered by whichever worker accepted the
  // connection: its list and stats cover that shard only, and say so. (On
  // a thread of its own: a thread has one event loop, which `c` holds, and
  // `c` keeps the two leases.)
  ASSERT_FALSE(before.direct_socket.empty());
  Listed one;
  std::string stats_shard;
  uint32_t stats_leased = 0;
  std::string direct_error;
  std::thread([&] {
    KJ_IF_MAYBE (e, error_of([&] {
      rpc::PoolConnection direct(before.direct_socket);
      one = listed(direct, "big");
      auto shard_stats = direct.pool().statsRequest().send().wait(direct.wait_scope()).getStats();
      if (shard_stats.getTemplates().size() != 1) return;
      stats_shard = shard_stats.getTemplates()[0].getShard().cStr();
      stats_leased = shard_stats.getTemplates()[0].getLeased();
    })) {
      direct_error = e->getDescription().cStr();
    }
  }).join();
  ASSERT_TRUE(one.found) << direct_error;
  EXPECT_TRUE(one.shard == "1/2" || one.shard == "2/2") << "shard label '" << one.shard << "'";
  EXPECT_EQ(one.workers, 2u);
  EXPECT_EQ(one.max_warm, 2u) << "that shard's share of max_warm 4";
  EXPECT_EQ(one.leased, 1u) << "one of the two leases is this shard's";
  EXPECT_EQ(stats_shard, one.shard);
  EXPECT_EQ(stats_leased, 1u);

  // The CLI shows the same: the shard as the worker on the direct socket,
  // the whole template (and no shard) through thawd.
  auto table = run_thaw("templates --socket " + before.direct_socket, scratch_.path());
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("shard " + one.shard), std::string::npos) << table.out;
  auto shard_text = run_thaw("stats --socket " + before.direct_socket, scratch_.path());
  ASSERT_EQ(shard_text.exit_code, 0) << shard_text.err;
  EXPECT_NE(shard_text.out.find("big (shard " + one.shard + " of its workers only)"), std::string::npos)
      << shard_text.out;
  auto whole = run_thaw("templates --json --socket " + daemon_.socket(), scratch_.path());
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_NE(whole.out.find("\"shard\": \"\""), std::string::npos) << whole.out;
  EXPECT_NE(whole.out.find("\"workers\": 2"), std::string::npos) << whole.out;
}

TEST_F(ShardedTemplate, AKilledShardTakesOnlyItsLeasesAndIsReplaced) {
  auto workers = shard_workers(daemon_.pid());
  ASSERT_EQ(workers.size(), 2u) << daemon_.log();
  rpc::PoolConnection c(daemon_.socket());
  auto first = acquire(c, "big");
  auto second = acquire(c, "big");
  // Shard 2 hands out even clone ids.
  auto& in_second_shard = clone_id(c, first) % 2 == 0 ? first : second;
  auto& in_first_shard = clone_id(c, first) % 2 == 0 ? second : first;
  ASSERT_EQ(::kill(workers["2/2"], SIGKILL), 0);

  KJ_IF_MAYBE (e, error_of([&] { invoke_echo(c, in_second_shard, "gone"); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "an invoke on a clone of the killed shard succeeded";
  }
  EXPECT_EQ(invoke_echo(c, in_first_shard, "still here"), "still here");
  // Meanwhile acquires go to the shard that lives.
  auto meanwhile = acquire(c, "big", 10000, 20000);
  EXPECT_EQ(invoke_echo(c, meanwhile, "meanwhile"), "meanwhile");

  const pid_t replacement = replaced_worker(daemon_.pid(), "2/2", workers["2/2"]);
  ASSERT_GT(replacement, 0) << daemon_.log();
  EXPECT_EQ(shard_workers(daemon_.pid())["1/2"], workers["1/2"]) << "the first shard's worker changed";
  // The new worker serves again: within a few turns an even clone id.
  bool even = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline && !even;) {
    auto attempt = error_of([&] {
      auto vm = acquire(c, "big", 10000, 20000);
      even = clone_id(c, vm) % 2 == 0 && invoke_echo(c, vm, "back") == "back";
      vm.releaseRequest().send().wait(c.wait_scope());
    });
    if (!even) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(even) << "no clone from the replaced shard\n" << daemon_.log();
  EXPECT_EQ(listed(c, "big").workers, 2u);
}

// Each shard also has a socket only it accepts on (shardSockets, in shard
// order): a client leasing directly reaches every shard's clones.
TEST_F(ShardedTemplate, EachShardHasASocketOfItsOwn) {
  Listed whole;
  {
    rpc::PoolConnection c(daemon_.socket());
    whole = listed(c, "big");
  }
  ASSERT_EQ(whole.shard_sockets.size(), 2u) << daemon_.log();
  EXPECT_NE(whole.shard_sockets[0], whole.shard_sockets[1]);
  for (uint32_t k = 1; k <= 2; ++k) {
    const std::string& path = whole.shard_sockets[k - 1];
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
    EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
    EXPECT_EQ(st.st_mode & 0777, 0660u) << path << ": not the access of thawd's socket";
    rpc::PoolConnection direct(path);
    Listed one = listed(direct, "big");
    EXPECT_EQ(one.shard, std::to_string(k) + "/2") << path;
    // Shard 1 hands out odd clone ids, shard 2 even ones; every acquire on
    // a shard's socket is that shard's.
    for (int i = 0; i < 3; ++i) {
      auto vm = acquire(direct, "big", 10000, 20000);
      EXPECT_EQ(clone_id(direct, vm) % 2, k % 2) << path;
      EXPECT_EQ(invoke_echo(direct, vm, "shard"), "shard");
      vm.releaseRequest().send().wait(direct.wait_scope());
    }
  }
}

TEST_F(ShardedTemplate, SetPolicyAndDeleteReachEveryShard) {
  auto workers = shard_workers(daemon_.pid());
  ASSERT_EQ(workers.size(), 2u) << daemon_.log();
  rpc::PoolConnection c(daemon_.socket());
  const auto shard_sockets = listed(c, "big").shard_sockets;
  ASSERT_EQ(shard_sockets.size(), 2u);
  set_policy(c, "big", 1, 6);
  EXPECT_EQ(listed(c, "big").max_warm, 6u);
  // Three shards would now be wanted; the count is fixed until thawd restarts.
  EXPECT_NE(daemon_.log().find("template 'big': the new policy would be spread over 3 workers; it keeps 2"),
            std::string::npos)
      << daemon_.log();
  // A bad policy is refused by every shard alike, and nothing changes.
  KJ_IF_MAYBE (e, error_of([&] { set_policy(c, "big", 5, 2); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "min_warm above max_warm was accepted";
  }
  EXPECT_EQ(listed(c, "big").max_warm, 6u);

  auto del = c.pool().deleteTemplateRequest();
  del.setName("big");
  del.send().wait(c.wait_scope());
  EXPECT_FALSE(listed(c, "big").found);
  bool gone = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(20); Clock::now() < deadline && !gone;) {
    gone = !std::filesystem::exists("/proc/" + std::to_string(workers["1/2"])) &&
           !std::filesystem::exists("/proc/" + std::to_string(workers["2/2"]));
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone) << "a shard's worker outlived deleteTemplate\n" << daemon_.log();
  EXPECT_FALSE(std::filesystem::exists(scratch_.path() + "/templates/big")) << "the snapshot is still on disk";
  for (const auto& path : shard_sockets) EXPECT_FALSE(std::filesystem::exists(path)) << path << " was left behind";
}

// The shard count follows the recorded policy at thawd's next start: a
// setPolicy to max_warm 6 runs as three workers after a restart, each
// loading the template from disk.
TEST_F(ShardedTemplate, ARestartSpreadsTheRecordedPolicyAndLoadsEveryShard) {
  {
    rpc::PoolConnection c(daemon_.socket());
    set_policy(c, "big", 3, 6);
  }
  int status = daemon_.stop();
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << daemon_.log();
  daemon_.write_config(daemon_.config_text({}, "clones_per_worker = 2\n"));  // the template comes from disk
  ASSERT_TRUE(daemon_.start(std::chrono::seconds(120))) << daemon_.log();
  std::map<std::string, pid_t> workers;
  for (auto deadline = Clock::now() + std::chrono::seconds(60); Clock::now() < deadline && workers.size() < 3;) {
    workers = shard_workers(daemon_.pid());
    if (workers.size() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(workers.size(), 3u) << daemon_.log();
  EXPECT_TRUE(workers.contains("1/3") && workers.contains("2/3") && workers.contains("3/3")) << daemon_.log();
  rpc::PoolConnection c(daemon_.socket());
  Listed now = listed(c, "big");
  EXPECT_EQ(now.workers, 3u);
  EXPECT_EQ(now.max_warm, 6u);
  // Three acquires in a row: one from each shard (clone ids 1, 2 and 0 mod 3).
  std::set<uint64_t> residues;
  std::vector<rpc::schema::Vm::Client> held;
  for (int i = 0; i < 3; ++i) {
    held.push_back(acquire(c, "big", 10000, 20000));
    residues.insert(clone_id(c, held.back()) % 3);
    EXPECT_EQ(invoke_echo(c, held.back(), "shard"), "shard");
  }
  EXPECT_EQ(residues.size(), 3u) << "three acquires did not reach three shards";
}

// vm_shells = "on" in thawd's config reaches each shard's worker (on any
// KVM): each prepares a VM shell for each clone of its share (max_warm 2
// of 4), so its clones and shells add up to 2 VMs; a setPolicy that halves
// max_warm closes each shard's surplus.
class ShardedTemplateWithShells : public ShardedTemplate {
 protected:
  void SetUp() override {
    THAW_REQUIRE_KVM();
    start("vm_shells = \"on\"\n");
  }
  // Whether `pid` comes to hold `want` KVM VMs within 30 s.
  static bool holds_vms(pid_t pid, size_t want) {
    for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline;) {
      if (kvm_vms_held(pid) == want) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
};

TEST_F(ShardedTemplateWithShells, EachShardPreparesShellsForItsShareAndClosesThoseANewPolicyLeavesOver) {
  auto workers = shard_workers(daemon_.pid());
  ASSERT_EQ(workers.size(), 2u) << daemon_.log();
  for (const auto& [shard, pid] : workers) {
    EXPECT_NE(daemon_.log().find("[worker big " + shard + "] pool 'big': 2 VM shells prepared"), std::string::npos)
        << daemon_.log();
    EXPECT_TRUE(holds_vms(pid, 2)) << "shard " << shard << " holds " << kvm_vms_held(pid) << " VMs, want 2";
  }
  rpc::PoolConnection c(daemon_.socket());
  set_policy(c, "big", 1, 2);
  for (const auto& [shard, pid] : workers) {
    EXPECT_TRUE(holds_vms(pid, 1)) << "shard " << shard << " holds " << kvm_vms_held(pid) << " VMs, want 1";
  }
}

// worker_cgroups naming a directory, with the template spread: each shard's
// worker joins a cgroup of its own (worker-big, worker-big.2) holding that
// shard's share of the limits; a setPolicy rewrites each share; a killed
// shard's replacement joins the same cgroup; deleteTemplate removes both.
// Needs root and a cgroup v2 hierarchy (.ci/as-full-host under emulation).
class ShardedTemplateInCgroups : public ShardedTemplate {
 protected:
  void SetUp() override {
    THAW_REQUIRE_KVM();
    if (!cgroup_.skip_reason().empty()) GTEST_SKIP() << cgroup_.skip_reason();
    start("worker_cgroups = " + daemon::toml_string(cgroup_.path()) + "\n");
  }
  void TearDown() override {
    ShardedTemplate::TearDown();  // thawd stops first: its workers leave their cgroups
    EXPECT_EQ(cgroup_.remove(), "");
  }
  // What the limits of shard `index` of 2 are under `policy`.
  daemon::WorkerLimits share(const pool::PoolPolicy& policy, uint32_t index) const {
    return daemon::worker_limits(big_.spec, pool::policy_share(policy, {index, 2}), daemon::DaemonConfig{}.workers);
  }
  std::string memory_max(const std::string& leaf) const { return read_whole_file(cgroup_.path() + "/" + leaf + "/memory.max"); }

  ScratchCgroup cgroup_{"thaw-shards"};
};

TEST_F(ShardedTemplateInCgroups, EachShardHasACgroupWithItsShareOfTheLimits) {
  auto workers = shard_workers(daemon_.pid());
  ASSERT_EQ(workers.size(), 2u) << daemon_.log();
  const std::string leaves[2] = {"worker-big", "worker-big.2"};
  EXPECT_EQ(ScratchCgroup::of(workers["1/2"]), cgroup_.relative() + "/" + leaves[0]) << daemon_.log();
  EXPECT_EQ(ScratchCgroup::of(workers["2/2"]), cgroup_.relative() + "/" + leaves[1]) << daemon_.log();
  const bool memory = std::filesystem::exists(cgroup_.path() + "/" + leaves[0] + "/memory.max");
  if (memory) {
    for (uint32_t i = 0; i < 2; ++i) {
      EXPECT_EQ(memory_max(leaves[i]), std::to_string(share(big_.policy, i).memory) + "\n") << leaves[i];
      EXPECT_LT(share(big_.policy, i).memory,
                daemon::worker_limits(big_.spec, big_.policy, daemon::DaemonConfig{}.workers).memory)
          << "a shard is held to the whole template's memory";
    }
  }
  rpc::PoolConnection c(daemon_.socket());
  // A larger policy: each cgroup now holds its share of it.
  const pool::PoolPolicy larger{2, 8, 2048};
  ASSERT_NE(share(larger, 1).memory, share(big_.policy, 1).memory);
  set_policy(c, "big", larger.min_warm, larger.max_warm, larger.memory_budget_mib);
  if (memory) {
    for (uint32_t i = 0; i < 2; ++i) {
      EXPECT_EQ(memory_max(leaves[i]), std::to_string(share(larger, i).memory) + "\n") << leaves[i] << daemon_.log();
    }
  }
  // Shard 2's replacement joins shard 2's cgroup.
  ASSERT_EQ(::kill(workers["2/2"], SIGKILL), 0);
  const pid_t replacement = replaced_worker(daemon_.pid(), "2/2", workers["2/2"]);
  ASSERT_GT(replacement, 0) << daemon_.log();
  // The worker joins its cgroup itself, early in its start.
  const std::string wanted = cgroup_.relative() + "/" + leaves[1];
  for (auto deadline = Clock::now() + std::chrono::seconds(20);
       Clock::now() < deadline && ScratchCgroup::of(replacement) != wanted;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(ScratchCgroup::of(replacement), wanted) << daemon_.log();

  auto del = c.pool().deleteTemplateRequest();
  del.setName("big");
  del.send().wait(c.wait_scope());
  bool removed = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(20); Clock::now() < deadline && !removed;) {
    removed = !std::filesystem::exists(cgroup_.path() + "/" + leaves[0]) &&
              !std::filesystem::exists(cgroup_.path() + "/" + leaves[1]);
    if (!removed) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(removed) << "a shard's cgroup outlived deleteTemplate\n" << daemon_.log();
}

}  // namespace
}  // namespace thaw::testing
