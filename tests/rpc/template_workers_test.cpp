// Isolation through the real thawd: each template's clones live in a worker
// process of their own (template_workers, the default). The kernel's view of
// the workers (parent, no_new_privs, the worker filter on every thread and
// the vCPU filter on vCPU threads, KVM fds in
// the workers and none in thawd), a worker killed under a lease (its lease
// fails as DISCONNECTED naming the worker, the other template serves on, a
// new worker loads the template and serves it), a template's direct socket
// (and someone else's socket at its path, left alone), and deleteTemplate
// ending the worker.
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "base/landlock.h"
#include "base/unix_socket.h"
#include "rpc/error_mapping.h"
#include "rpc/daemon/worker_cgroups.h"
#include "rpc/daemon/worker_limits.h"
#include "rpc/pool_client.h"
#include "vmm/kvm/kvm_system.h"
#include "tests/child_report.h"
#include "tests/rpc/rpc_test_helpers.h"
#include "tests/rpc/scratch_cgroup.h"
#include "tests/rpc/thawd_process.h"
#include "tests/unix_socket_support.h"

namespace thaw::testing {
namespace {

using Clock = std::chrono::steady_clock;

// Template name -> the pid of the worker serving it, from listTemplates.
std::map<std::string, pid_t> worker_pids(rpc::PoolConnection& c) {
  std::map<std::string, pid_t> out;
  auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
  for (auto t : list.getTemplates()) out[t.getName().cStr()] = static_cast<pid_t>(t.getWorkerPid());
  return out;
}

// The targets of /proc/<pid>/fd/*: "/dev/kvm", "anon_inode:kvm-vm", ...
std::vector<std::string> fd_targets(pid_t pid) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    std::error_code link_ec;
    auto target = std::filesystem::read_symlink(e.path(), link_ec);
    if (!link_ec) out.push_back(target.string());
  }
  return out;
}

bool holds_kvm(pid_t pid) {
  for (const auto& t : fd_targets(pid)) {
    if (t == "/dev/kvm" || t.find("kvm-vm") != std::string::npos || t.find("kvm-vcpu") != std::string::npos) {
      return true;
    }
  }
  return false;
}

// "net:[4026531840]": which namespace of `kind` process `pid` is in.
std::string namespace_link(pid_t pid, const std::string& kind) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/" + std::to_string(pid) + "/ns/" + kind, ec).string();
}

// Threads of `pid` whose status says Seccomp: 2 (a filter).
int filtered_threads(pid_t pid) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task", ec)) {
    if (read_whole_file((e.path() / "status").string()).find("Seccomp:\t2") != std::string::npos) ++n;
  }
  return n;
}

class TemplateWorkers : public ::testing::Test {
 protected:
  void SetUp() override {
    THAW_REQUIRE_KVM();
    daemon_.write_config(daemon_.config_text({mini_pool("a"), mini_pool("b")}));
    ASSERT_TRUE(daemon_.start(std::chrono::seconds(60))) << daemon_.log();
  }
  void TearDown() override {
    if (daemon_.pid() <= 0) return;
    int status = daemon_.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "thawd exit status " << status << "\n"
                                                               << daemon_.log();
  }

  TempDir scratch_{"thaw-rpc-workers"};
  ThawdProcess daemon_{scratch_.path()};
};

TEST_F(TemplateWorkers, EachTemplateRunsInASandboxedWorkerOfItsOwnAndThawdHoldsNoKvm) {
  rpc::PoolConnection c(daemon_.socket());
  auto pids = worker_pids(c);
  ASSERT_EQ(pids.size(), 2u);
  ASSERT_GT(pids["a"], 0);
  ASSERT_GT(pids["b"], 0);
  EXPECT_NE(pids["a"], pids["b"]);
  for (auto [name, pid] : pids) {
    auto status = read_whole_file("/proc/" + std::to_string(pid) + "/status");
    EXPECT_NE(status.find("PPid:\t" + std::to_string(daemon_.pid()) + "\n"), std::string::npos) << name << status;
    EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << name << status;
    EXPECT_NE(status.find("Seccomp:\t2"), std::string::npos) << name << ": no seccomp filter\n" << status;
    EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos) << name << status;
    EXPECT_NE(status.find("CapBnd:\t0000000000000000"), std::string::npos) << name << status;
    EXPECT_TRUE(holds_kvm(pid)) << "worker " << name << " holds no KVM fd: its clones are not there";
    if (user_namespaces_refused().empty()) {
      for (const char* kind : {"user", "net", "ipc", "uts"}) {
        EXPECT_NE(namespace_link(pid, kind), namespace_link(daemon_.pid(), kind))
            << "worker " << name << " shares thawd's " << kind << " namespace";
      }
    }
  }
  if (user_namespaces_refused().empty()) {
    EXPECT_NE(daemon_.log().find("[worker a] sandbox: namespaces: user net ipc uts"), std::string::npos)
        << daemon_.log();
  }
  // On PVM the pool made its VM shells (max_warm of them) before its first
  // restore; elsewhere it says why it made none.
  if (vmm::kvm::detect_backend() == vmm::kvm::KvmBackend::kPvm) {
    EXPECT_NE(daemon_.log().find("[worker a] pool 'a': 2 VM shells prepared"), std::string::npos) << daemon_.log();
  } else {
    EXPECT_NE(daemon_.log().find("[worker a] pool 'a': no prepared VM shells on"), std::string::npos) << daemon_.log();
  }
  // A leased clone runs on a vCPU thread of its worker, under the vCPU filter.
  auto vm = acquire(c, "a");
  EXPECT_EQ(invoke_echo(c, vm, "in a worker"), "in a worker");
  EXPECT_GE(filtered_threads(pids["a"]), 1) << "no filtered thread in worker a";
  // thawd itself runs no guest: no KVM fd at all, and its own filter
  // (which forbids KVM) on its threads.
  EXPECT_FALSE(holds_kvm(daemon_.pid())) << "thawd holds a KVM fd";
  EXPECT_NE(daemon_.proc_status().find("Seccomp:\t2"), std::string::npos) << daemon_.proc_status();
  EXPECT_NE(daemon_.log().find("filter 'thawd'"), std::string::npos) << daemon_.log();
  // Landlock where the kernel has it, unless the worker's files are on 9p
  // (the emulated machine's root), where it says why it is not applied.
  if (landlock_abi() > 0) {
    const std::string log = daemon_.log();
    const size_t skipped = log.find("[worker a] sandbox: Landlock not applied: ");
    if (skipped == std::string::npos) {
      EXPECT_NE(log.find("[worker a] sandbox: landlock ABI"), std::string::npos) << log;
    } else {
      EXPECT_NE(log.find("on a 9p file system", skipped), std::string::npos) << log;
    }
  }
}

TEST_F(TemplateWorkers, AKilledWorkerTakesOnlyItsOwnLeasesAndComesBackWithItsTemplate) {
  rpc::PoolConnection c(daemon_.socket());
  auto before = worker_pids(c);
  auto vm_a = acquire(c, "a");
  auto vm_b = acquire(c, "b");
  ASSERT_EQ(invoke_echo(c, vm_a, "a1"), "a1");
  ASSERT_EQ(::kill(before["a"], SIGKILL), 0);
  // Listed throughout: as last seen while its worker restarts.
  EXPECT_TRUE(worker_pids(c).contains("a")) << "template a vanished from the list while its worker restarted";

  // The lease in the killed worker is gone, and says so.
  KJ_IF_MAYBE (e, error_of([&] { invoke_echo(c, vm_a, "a2"); })) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::DISCONNECTED) << rpc::error_message(*e);
    EXPECT_NE(rpc::error_message(*e).find("worker process went away"), std::string::npos) << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << "an invoke on a clone of a killed worker succeeded";
  }
  // The other template's lease never noticed.
  EXPECT_EQ(invoke_echo(c, vm_b, "b1"), "b1");

  // A new worker takes template a up again and serves it.
  pid_t replacement = 0;
  for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline && replacement == 0;) {
    auto now = worker_pids(c);
    if (now.contains("a") && now["a"] > 0 && now["a"] != before["a"]) replacement = now["a"];
    if (replacement == 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(replacement, 0) << daemon_.log();
  auto again = acquire(c, "a", 10000, 20000);
  EXPECT_EQ(invoke_echo(c, again, "a3"), "a3");
  EXPECT_EQ(worker_pids(c)["b"], before["b"]) << "template b's worker changed";
  EXPECT_NE(daemon_.log().find("worker " + std::to_string(before["a"]) + " killed by SIGKILL"), std::string::npos)
      << daemon_.log();
}

// A template's direct socket: served by its worker (no hop through thawd),
// with thawd's socket's mode; it acquires and invokes for that template
// only, refuses what changes templates, and serves again after the worker
// is replaced; deleting the template removes it.
TEST_F(TemplateWorkers, ADirectSocketServesItsTemplateOnlyAndOutlivesAWorker) {
  // One connection at a time: kj allows one event loop per thread.
  std::string path;
  pid_t old = 0;
  {
    rpc::PoolConnection c(daemon_.socket());
    auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
    for (auto t : list.getTemplates()) {
      if (t.getName() == "a") path = t.getDirectSocket().cStr();
    }
    old = worker_pids(c)["a"];
  }
  ASSERT_FALSE(path.empty()) << "template a lists no direct socket";
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  {
    rpc::PoolConnection direct(path);
    auto vm = acquire(direct, "a");
    EXPECT_EQ(invoke_echo(direct, vm, "direct"), "direct");
    expect_failed("acquire of another template", "serves template 'a' only", [&] { acquire(direct, "b"); });
    expect_failed("deleteTemplate", "use thawd's socket", [&] {
      auto req = direct.pool().deleteTemplateRequest();
      req.setName("a");
      req.send().wait(direct.wait_scope());
    });
  }
  // A new worker takes the same socket over.
  ASSERT_EQ(::kill(old, SIGKILL), 0);
  bool served = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(30); Clock::now() < deadline && !served;) {
    auto attempt = error_of([&] {
      rpc::PoolConnection direct(path);
      auto vm = acquire(direct, "a", 10000, 10000);
      served = invoke_echo(direct, vm, "again") == "again";
    });
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served) << daemon_.log();
  rpc::PoolConnection c(daemon_.socket());
  auto del = c.pool().deleteTemplateRequest();
  del.setName("a");
  del.send().wait(c.wait_scope());
  EXPECT_FALSE(std::filesystem::exists(path)) << path << " still there after deleteTemplate";
}

// Someone else's live socket where a template's direct socket would go is
// left serving: thawd serves the template without a direct socket, says so
// in its log, and neither start nor stop touches that socket.
TEST(TemplateWorkersDirectSocket, ALiveSocketAtItsPathIsLeftAloneAndTheTemplateServesWithoutOne) {
  THAW_REQUIRE_KVM();
  TempDir scratch{"thaw-rpc-workers"};
  ThawdProcess daemon{scratch.path()};
  // Where thawd puts template a's direct socket: "<stem>-a.sock" beside its own.
  const std::string taken = (scratch / "thaw-a.sock");
  ASSERT_EQ(daemon.socket(), scratch / "thaw.sock");
  UniqueFd other = listen_unix(taken);
  const ino_t before = inode_of(taken);
  daemon.write_config(daemon.config_text({mini_pool("a")}));
  ASSERT_TRUE(daemon.start(std::chrono::seconds(60))) << daemon.log();
  {
    rpc::PoolConnection c(daemon.socket());
    auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
    ASSERT_EQ(list.getTemplates().size(), 1u);
    EXPECT_EQ(std::string(list.getTemplates()[0].getDirectSocket().cStr()), "") << "a direct socket in use was listed";
    auto vm = acquire(c, "a");
    EXPECT_EQ(invoke_echo(c, vm, "via thawd"), "via thawd");
  }
  EXPECT_EQ(inode_of(taken), before) << "the other listener's socket file was replaced or removed";
  EXPECT_EQ(probe_unix_socket(taken).state, UnixSocketState::kListening);
  EXPECT_NE(daemon.log().find("no direct socket"), std::string::npos) << daemon.log();
  const int status = daemon.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "thawd exit status " << status << "\n" << daemon.log();
  EXPECT_EQ(inode_of(taken), before) << "thawd's stop removed a socket that was not its own";
}

TEST_F(TemplateWorkers, DeletingATemplateEndsItsWorker) {
  rpc::PoolConnection c(daemon_.socket());
  pid_t b = worker_pids(c)["b"];
  ASSERT_GT(b, 0);
  auto req = c.pool().deleteTemplateRequest();
  req.setName("b");
  req.send().wait(c.wait_scope());
  bool gone = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(10); Clock::now() < deadline && !gone;) {
    // Reaped by thawd: no /proc entry (a zombie would still have one).
    gone = !std::filesystem::exists("/proc/" + std::to_string(b));
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(gone) << "worker " << b << " of a deleted template still exists";
  auto pids = worker_pids(c);
  EXPECT_FALSE(pids.contains("b"));
  EXPECT_TRUE(pids.contains("a"));
}

// One line of /proc/<pid>/limits ("Max open files  1024  4096  files"):
// its soft limit, as written there ("unlimited" or a number).
std::string soft_limit(pid_t pid, const std::string& what) {
  std::istringstream lines(read_whole_file("/proc/" + std::to_string(pid) + "/limits"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(what, 0) != 0) continue;
    std::istringstream fields(line.substr(what.size()));
    std::string soft;
    fields >> soft;
    return soft;
  }
  return "<no " + what + " line>";
}

// What the worker's rlimits should be: its template's limits, each no
// higher than the hard limit thawd started with (this process's).
std::string expected_limit(uint64_t wanted, int resource) {
  rlimit hard{};
  ::getrlimit(resource, &hard);
  return std::to_string(std::min<uint64_t>(wanted, hard.rlim_max));
}

TEST_F(TemplateWorkers, EachWorkerHasResourceLimitsSizedFromItsTemplate) {
  rpc::PoolConnection c(daemon_.socket());
  const pid_t worker = worker_pids(c)["a"];
  ASSERT_GT(worker, 0);
  const auto pool = mini_pool("a");
  const daemon::WorkerLimits wanted = daemon::worker_limits(pool.spec, pool.policy, daemon::DaemonConfig{}.workers);
  EXPECT_EQ(soft_limit(worker, "Max open files"), expected_limit(wanted.open_files, RLIMIT_NOFILE));
  // Threads are limited only inside a user namespace of the worker's own:
  // outside one, RLIMIT_NPROC would count every thread of the user.
  if (namespace_link(worker, "user") != namespace_link(daemon_.pid(), "user")) {
    EXPECT_EQ(soft_limit(worker, "Max processes"), expected_limit(wanted.threads, RLIMIT_NPROC));
  } else {
    EXPECT_EQ(soft_limit(worker, "Max processes"), soft_limit(daemon_.pid(), "Max processes"));
    EXPECT_NE(daemon_.log().find("threads not limited (no user namespace of its own"), std::string::npos)
        << daemon_.log();
  }
  EXPECT_EQ(soft_limit(worker, "Max address space"), expected_limit(wanted.address_space, RLIMIT_AS));
  EXPECT_NE(daemon_.log().find("[worker a] sandbox: rlimits files"), std::string::npos) << daemon_.log();
  // thawd itself is not held to a template's limits.
  EXPECT_EQ(soft_limit(daemon_.pid(), "Max address space"), "unlimited");
  // The limits hold clones all the same: one leased and two warm.
  auto vm = acquire(c, "a");
  EXPECT_EQ(invoke_echo(c, vm, "limited"), "limited");
}

// worker_cgroups naming a directory: each worker moves into a cgroup of its
// own beneath it, with the template's memory and task limits where those
// controllers are handed down there; deleting the template removes it.
// Needs root and a writable cgroup v2 hierarchy (skips otherwise).
TEST(TemplateWorkerCgroups, EachWorkerJoinsItsOwnCgroupWithItsLimitsAndDeletingRemovesIt) {
  THAW_REQUIRE_KVM();
  ScratchCgroup cgroup("thaw-test");
  if (!cgroup.skip_reason().empty()) GTEST_SKIP() << cgroup.skip_reason();
  const std::string& subtree = cgroup.path();
  TempDir scratch("thaw-rpc-cgroups");
  ThawdProcess daemon(scratch.path());
  daemon.write_config(daemon.config_text({mini_pool("a")}, "worker_cgroups = " + daemon::toml_string(subtree) + "\n"));
  ASSERT_TRUE(daemon.start(std::chrono::seconds(60))) << daemon.log();
  pid_t worker = 0;
  {
    rpc::PoolConnection c(daemon.socket());
    worker = worker_pids(c)["a"];
    ASSERT_GT(worker, 0);
    auto vm = acquire(c, "a");
    EXPECT_EQ(invoke_echo(c, vm, "in a cgroup"), "in a cgroup");
  }
  const std::string own = subtree + "/worker-a";
  EXPECT_EQ(ScratchCgroup::of(worker), cgroup.relative() + "/worker-a");
  EXPECT_NE(read_whole_file(own + "/cgroup.procs").find(std::to_string(worker)), std::string::npos);
  EXPECT_NE(daemon.log().find("worker cgroups: in " + subtree), std::string::npos) << daemon.log();
  const auto pool = mini_pool("a");
  const auto wanted = daemon::worker_limits(pool.spec, pool.policy, daemon::DaemonConfig{}.workers);
  if (std::filesystem::exists(own + "/memory.max")) {
    EXPECT_EQ(read_whole_file(own + "/memory.max"), std::to_string(wanted.memory) + "\n");
  }
  if (std::filesystem::exists(own + "/pids.max")) {
    EXPECT_EQ(read_whole_file(own + "/pids.max"), std::to_string(wanted.threads) + "\n");
  }
  {
    rpc::PoolConnection c(daemon.socket());
    auto del = c.pool().deleteTemplateRequest();
    del.setName("a");
    del.send().wait(c.wait_scope());
  }
  bool removed = false;
  for (auto deadline = Clock::now() + std::chrono::seconds(15); Clock::now() < deadline && !removed;) {
    removed = !std::filesystem::exists(own);
    if (!removed) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(removed) << own << " still there after deleteTemplate\n" << daemon.log();
  int status = daemon.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << daemon.log();
  EXPECT_EQ(cgroup.remove(), "");
}

TEST(TemplateWorkerCgroups, ADirectoryThatIsNoCgroupIsAConfigError) {
  THAW_REQUIRE_KVM();
  TempDir scratch("thaw-rpc-cgroups");
  ThawdProcess daemon(scratch.path());
  daemon.write_config(daemon.config_text({}, "worker_cgroups = " + daemon::toml_string(scratch.path()) + "\n"));
  EXPECT_FALSE(daemon.start(std::chrono::seconds(20)));
  int status = daemon.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2) << "status " << status << "\n" << daemon.log();
  EXPECT_NE(daemon.log().find("worker_cgroups: " + scratch.path() + " is not a directory of a cgroup hierarchy"),
            std::string::npos)
      << daemon.log();
}

}  // namespace
}  // namespace thaw::testing
