// A pool's filtered-thread spawners (vmm/vm_thread_spawners.h) in a real VM:
// a clone restored with them gets its vCPU thread already under a seccomp
// filter and SCHED_BATCH (inherited from the spawner, never applied by the
// thread), and the guest runs its clone function under it to the right
// answer. In this test process only the spawners and what they start are
// filtered (the pool's shared vsock muxer among them), so the filtered
// threads can be counted.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/snapshot_test_support.h"
#include "vmm/vm_thread_spawners.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;

// Threads of this process whose status says "Seccomp: 2" (a filter).
std::vector<pid_t> filtered_threads() {
  std::vector<pid_t> out;
  DIR* dir = ::opendir("/proc/self/task");
  if (dir == nullptr) return out;
  while (dirent* e = ::readdir(dir)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream status(std::string("/proc/self/task/") + e->d_name + "/status");
    std::string text((std::istreambuf_iterator<char>(status)), std::istreambuf_iterator<char>());
    if (text.find("Seccomp:\t2") != std::string::npos) out.push_back(std::stoi(e->d_name));
  }
  ::closedir(dir);
  return out;
}

TEST(VmThreadSpawners, AClonesVcpuThreadStartsFilteredAndTheGuestAnswers) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const uint64_t n = 1 << 16;
  testing::snapshot_mini_guest("console=ttyS0 thaw.after=split thaw.fn_bytes=" + std::to_string(n), dir.path());
  auto loaded = snapshot::read_snapshot_dir(dir.path());
  auto spawners = vmm::VmThreadSpawners::start();
  const auto before = filtered_threads();
  ASSERT_EQ(before.size(), 2u) << "the vCPU spawner and the shared vsock muxer";

  testing::CapturedConsole console;
  snapshot::RestoreOptions options;
  options.console = console.sink();
  options.pause_on_guest_exit = true;  // the vCPU thread stays, parked, to be looked at
  options.thread_spawners = spawners;
  auto clone = snapshot::restore_vm(loaded, options);
  clone.vm->start();
  ASSERT_TRUE(clone.vm->wait(30s)) << console.text();
  EXPECT_EQ(clone.vm->state(), vmm::RunState::kPaused) << clone.vm->stop_detail() << console.text();
  const std::string want = "thaw-mini: split fnv1a(" + std::to_string(n) + ") = " +
                           testing::hex16(testing::mini_guest_fnv1a(n));
  EXPECT_TRUE(console.contains(want)) << "want '" << want << "' in:\n" << console.text();

  auto during = filtered_threads();
  ASSERT_EQ(during.size(), 3u) << "the vCPU spawner, the shared muxer and the clone's vCPU thread";
  int batch = 0;
  for (pid_t tid : during) batch += ::sched_getscheduler(tid) == SCHED_BATCH ? 1 : 0;
  EXPECT_EQ(batch, 2) << "the vCPU spawner and the vCPU thread it started";
  clone.vm->stop();
  clone = {};
  for (int i = 0; i < 200 && filtered_threads().size() != 2; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_EQ(filtered_threads().size(), 2u) << "the vCPU thread is gone with its VM";
}

}  // namespace
}  // namespace thaw
