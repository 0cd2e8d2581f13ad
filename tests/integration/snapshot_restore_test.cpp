// Snapshot at boot complete, restore clones, reset in place: the guest must
// not notice anything but the clone-specific input it is given.
#include <gtest/gtest.h>

#include "snapshot/memory_file.h"
#include "tests/integration/snapshot_test_support.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using snapshot::MemoryBacking;
using testing::CapturedConsole;

snapshot::RestoreOptions options_for(MemoryBacking memory, CapturedConsole& console) {
  snapshot::RestoreOptions options;
  options.memory = memory;
  options.console = console.sink();
  return options;
}

class SnapshotRestore : public ::testing::TestWithParam<MemoryBacking> {};

TEST_P(SnapshotRestore, ComputationSplitBySnapshotMatchesStraightRun) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const uint64_t n = 1 << 20;
  testing::snapshot_mini_guest("console=ttyS0 thaw.after=split thaw.fn_bytes=" + std::to_string(n), dir.path());
  CapturedConsole console;
  auto clone = snapshot::restore_vm(dir.path(), options_for(GetParam(), console));
  clone.vm->start();
  ASSERT_TRUE(clone.vm->wait(30s)) << console.text();
  EXPECT_EQ(clone.vm->stop_reason(), vmm::StopReason::kGuestExit) << clone.vm->stop_detail() << console.text();
  std::string want = "thaw-mini: split fnv1a(" + std::to_string(n) + ") = " + testing::hex16(testing::mini_guest_fnv1a(n));
  EXPECT_TRUE(console.contains(want)) << "want '" << want << "' in:\n" << console.text();
  EXPECT_FALSE(console.contains("thaw-mini: booting")) << "a clone continues, it does not boot again";
}

// The mini guest needs no in-kernel PIT (its timer is the LAPIC's): a
// snapshot of a VM without one restores without one, and runs the same.
TEST_P(SnapshotRestore, AVmWithoutAPitSnapshotsAndRestoresWithoutOne) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  const uint64_t n = 1 << 16;
  testing::snapshot_mini_guest("console=ttyS0 thaw.after=split thaw.fn_bytes=" + std::to_string(n), dir.path(),
                               /*pit=*/false);
  auto loaded = snapshot::read_snapshot_dir(dir.path());
  EXPECT_FALSE(loaded.state.machine.vm.has_pit);
  CapturedConsole console;
  auto clone = snapshot::restore_vm(loaded, options_for(GetParam(), console));
  EXPECT_FALSE(clone.vm->config().pit);
  clone.vm->start();
  ASSERT_TRUE(clone.vm->wait(30s)) << console.text();
  EXPECT_EQ(clone.vm->stop_reason(), vmm::StopReason::kGuestExit) << clone.vm->stop_detail() << console.text();
  std::string want = "thaw-mini: split fnv1a(" + std::to_string(n) + ") = " + testing::hex16(testing::mini_guest_fnv1a(n));
  EXPECT_TRUE(console.contains(want)) << "want '" << want << "' in:\n" << console.text();
}

TEST_P(SnapshotRestore, TimerKeepsTickingAfterRestore) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  testing::snapshot_mini_guest("console=ttyS0 thaw.fn_bytes=4096 thaw.after=ticks:5", dir.path());
  CapturedConsole console;
  auto clone = snapshot::restore_vm(dir.path(), options_for(GetParam(), console));
  clone.vm->start();
  ASSERT_TRUE(clone.vm->wait(30s)) << "the restored timer did not fire: " << clone.vm->stop_detail();
  EXPECT_EQ(clone.vm->stop_reason(), vmm::StopReason::kGuestExit) << clone.vm->stop_detail();
  EXPECT_TRUE(console.contains("thaw-mini: ticks 5")) << console.text();
}

INSTANTIATE_TEST_SUITE_P(Backings, SnapshotRestore,
                         ::testing::Values(MemoryBacking::kPrivate, MemoryBacking::kEager, MemoryBacking::kUffd),
                         [](const ::testing::TestParamInfo<MemoryBacking>& p) { return std::string(snapshot::memory_backing_name(p.param)); });

TEST(SnapshotClones, RunIndependentlyAndLeaveTheMemoryFileUntouched) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  testing::snapshot_mini_guest("console=ttyS0 thaw.fn_bytes=4096 thaw.after=clone", dir.path());
  auto loaded = snapshot::read_snapshot_dir(dir.path());
  const uint64_t inputs[] = {0x11, 0x5a, 0xc3};
  std::vector<CapturedConsole> consoles(3);
  std::vector<snapshot::RestoredVm> clones;
  auto kvm = vmm::KvmHost::open();  // one /dev/kvm for all three, as a pool has
  for (size_t i = 0; i < 3; ++i) {
    auto options = options_for(MemoryBacking::kPrivate, consoles[i]);
    options.pause_on_guest_exit = true;
    options.kvm = kvm;
    clones.push_back(snapshot::restore_vm(loaded, options));
    testing::ControlPage page;
    page.clone_id = 100 + i;
    page.clone_input = inputs[i];
    page.seed = 0x1234 + i;
    clones.back().vm->memory().write_obj(vmm::GuestAddress(testing::kControlPage), page);
  }
  for (auto& c : clones) c.vm->start();
  for (size_t i = 0; i < 3; ++i) {
    auto& vm = *clones[i].vm;
    ASSERT_TRUE(vm.wait(30s)) << consoles[i].text();
    ASSERT_EQ(vm.state(), vmm::RunState::kPaused) << vm.stop_detail() << consoles[i].text();
    auto expected = testing::expected_clone_buffer(inputs[i]);
    auto buffer = vm.memory().slice(vmm::GuestAddress(testing::kCloneBuffer), testing::kCloneBufferBytes);
    EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), expected.begin())) << "clone " << i << " sees other data";
    std::string want = "thaw-mini: clone " + std::to_string(100 + i);
    EXPECT_TRUE(consoles[i].contains(want)) << consoles[i].text();
    EXPECT_TRUE(consoles[i].contains(testing::hex16(testing::fnv1a(expected)))) << consoles[i].text();
  }
  for (auto& c : clones) c.vm->stop();
  // Copy-on-write: nothing a clone wrote reached the shared memory file.
  EXPECT_NO_THROW(snapshot::verify_memory_file(loaded.memory_path, loaded.state.memory));
}

// Prepared VM shells: clones restored into VMs made ahead (with the
// snapshot's PIT or without) run exactly as clones that made their own, and
// an empty stock falls back to making the VM.
TEST(SnapshotClones, ClonesInPreparedShellsRunAsClonesThatMadeTheirVm) {
  THAW_REQUIRE_KVM();
  for (bool pit : {true, false}) {
    testing::TempDir dir;
    const uint64_t n = 1 << 16;
    testing::snapshot_mini_guest("console=ttyS0 thaw.after=split thaw.fn_bytes=" + std::to_string(n), dir.path(), pit);
    auto loaded = snapshot::read_snapshot_dir(dir.path());
    vmm::VmShellStock stock("/dev/kvm");
    EXPECT_EQ(stock.fill(2), 2u);
    EXPECT_EQ(stock.fill(2), 0u) << "already full";
    EXPECT_EQ(stock.size(), 2u);
    const std::string want = "thaw-mini: split fnv1a(" + std::to_string(n) + ") = " +
                             testing::hex16(testing::mini_guest_fnv1a(n));
    for (int i = 0; i < 3; ++i) {  // two from the stock, then one without
      CapturedConsole console;
      auto options = options_for(MemoryBacking::kPrivate, console);
      options.shells = &stock;
      auto clone = snapshot::restore_vm(loaded, options);
      EXPECT_EQ(clone.timings.prepared_shell, i < 2) << "clone " << i << (pit ? " with" : " without") << " a PIT";
      EXPECT_EQ(stock.size(), i < 2 ? 1u - i : 0u);
      EXPECT_EQ(clone.vm->config().pit, pit);
      clone.vm->start();
      ASSERT_TRUE(clone.vm->wait(30s)) << console.text();
      EXPECT_EQ(clone.vm->stop_reason(), vmm::StopReason::kGuestExit) << clone.vm->stop_detail() << console.text();
      EXPECT_TRUE(console.contains(want)) << "want '" << want << "' in:\n" << console.text();
    }
  }
}

// A pool whose policy shrank hands its surplus shells back a few at a time:
// trim() leaves `keep`, takes at most `most` a call, and the shells it
// returns are open VMs until the caller lets them go.
TEST(VmShellStock, TrimLeavesWhatIsKeptAndTakesAtMostSoManyACall) {
  THAW_REQUIRE_KVM();
  vmm::VmShellStock stock("/dev/kvm");
  ASSERT_EQ(stock.fill(5), 5u);
  auto first = stock.trim(2, 2);
  EXPECT_EQ(first.size(), 2u);
  EXPECT_EQ(stock.size(), 3u);
  for (auto& shell : first) EXPECT_GE(shell.check_extension(KVM_CAP_IRQCHIP), 0) << "a trimmed shell is still a VM";
  EXPECT_EQ(stock.trim(2, 16).size(), 1u) << "only down to keep";
  EXPECT_EQ(stock.size(), 2u);
  EXPECT_TRUE(stock.trim(5, 16).empty()) << "nothing over keep";
  EXPECT_EQ(stock.trim(0, 16).size(), 2u);
  EXPECT_FALSE(stock.take().has_value());
}

TEST(SnapshotClones, ResetInPlaceBehavesLikeAFreshClone) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  testing::snapshot_mini_guest("console=ttyS0 thaw.fn_bytes=4096 thaw.after=clone", dir.path());
  auto loaded = snapshot::read_snapshot_dir(dir.path());
  for (auto backing : {MemoryBacking::kPrivate, MemoryBacking::kUffd, MemoryBacking::kEager}) {
    CapturedConsole console;
    auto options = options_for(backing, console);
    options.pause_on_guest_exit = true;
    auto clone = snapshot::restore_vm(loaded, options);
    testing::ControlPage first;
    first.clone_id = 1;
    first.clone_input = 0x21;
    clone.vm->memory().write_obj(vmm::GuestAddress(testing::kControlPage), first);
    clone.vm->start();
    ASSERT_TRUE(clone.vm->wait(30s));
    ASSERT_EQ(clone.vm->state(), vmm::RunState::kPaused) << clone.vm->stop_detail() << console.text();

    auto reset = snapshot::reset_vm(clone, loaded, options);
    EXPECT_GT(reset.total.count(), 0);
    // After the reset the clone's memory is the snapshot's again.
    auto buffer = clone.vm->memory().slice(vmm::GuestAddress(testing::kCloneBuffer), testing::kCloneBufferBytes);
    auto old = testing::expected_clone_buffer(0x21);
    EXPECT_FALSE(std::equal(buffer.begin(), buffer.end(), old.begin())) << "reset kept the guest's writes";
    auto page = clone.vm->memory().read_obj<testing::ControlPage>(vmm::GuestAddress(testing::kControlPage));
    EXPECT_NE(page.magic, testing::kControlMagic) << "reset kept the control page";

    testing::ControlPage second;
    second.clone_id = 2;
    second.clone_input = 0x77;
    clone.vm->memory().write_obj(vmm::GuestAddress(testing::kControlPage), second);
    clone.vm->resume();
    ASSERT_TRUE(clone.vm->wait(30s));
    ASSERT_EQ(clone.vm->state(), vmm::RunState::kPaused) << clone.vm->stop_detail() << console.text();
    auto fresh = testing::expected_clone_buffer(0x77);
    EXPECT_TRUE(std::equal(buffer.begin(), buffer.end(), fresh.begin())) << snapshot::memory_backing_name(backing);
    EXPECT_TRUE(console.contains("thaw-mini: clone 2 ")) << console.text();
    EXPECT_EQ(clone.vm->guest_exits(), 2u);
    clone.vm->stop();
  }
}

TEST(SnapshotOnDemand, ARunningVmIsSnapshottedAndRunsOn) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  CapturedConsole console;
  // 400 timer ticks (about 0.8 s of guest time): still running when the
  // snapshot comes even after a host stall between "ready" and the call.
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=ticks:400", console);
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(console.wait_for_all({"thaw-mini: ready"}, 30s)) << console.text();
  auto saved = snapshot::snapshot_running_vm(*vm, dir.path());
  EXPECT_GT(saved.write.state_bytes, 0u);
  EXPECT_EQ(vm->state(), vmm::RunState::kRunning) << "the VM runs on after an on-demand snapshot";
  ASSERT_TRUE(vm->wait(30s));
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail();
  // The snapshot, taken mid-run, restores and finishes the same work.
  CapturedConsole clone_console;
  auto clone = snapshot::restore_vm(dir.path(), options_for(MemoryBacking::kPrivate, clone_console));
  clone.vm->start();
  ASSERT_TRUE(clone.vm->wait(30s));
  EXPECT_EQ(clone.vm->stop_reason(), vmm::StopReason::kGuestExit) << clone.vm->stop_detail();
  EXPECT_TRUE(clone_console.contains("thaw-mini: ticks 400")) << clone_console.text();
}

}  // namespace
}  // namespace thaw
