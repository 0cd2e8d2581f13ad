// snapshot::boot_and_snapshot, the cold boot -> pause -> save path every
// caller shares: a guest that reaches its boot-complete write is saved and
// stays paused there; one that does not in time is a BootIncomplete naming
// why, the VM is stopped and no snapshot is left behind.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "snapshot/vm_snapshot.h"
#include "tests/integration/snapshot_test_support.h"
#include "tests/vmm/synthetic_images.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

vmm::VmConfig pausing(CapturedConsole& console) {
  auto config = testing::mini_config("console=ttyS0 thaw.quiet=1", console);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  return config;
}

TEST(BootAndSnapshot, SavesAtBootCompleteAndLeavesTheVmPausedThere) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  CapturedConsole console;
  auto vm = vmm::Vm::create(pausing(console));
  auto saved = snapshot::boot_and_snapshot(*vm, dir.path() + "/snap", 60s);
  EXPECT_EQ(vm->state(), vmm::RunState::kPaused);
  ASSERT_TRUE(vm->boot_complete_after().has_value());
  EXPECT_GT(saved.write.state_bytes, 0u);
  auto loaded = snapshot::read_snapshot_dir(dir.path() + "/snap");
  EXPECT_EQ(loaded.state.machine.vcpus.size(), 1u);
  EXPECT_EQ(loaded.state.boot_complete_after_ns, static_cast<uint64_t>(vm->boot_complete_after()->count()));
  vm->stop();
}

TEST(BootAndSnapshot, NoBootCompleteInTimeIsBootIncompleteAndLeavesNothing) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  // A kernel that halts at its first instruction: it can never write
  // boot-complete, however the host schedules the threads (the mini guest
  // gets there in a few ms, which a busy host can let pass before wait()).
  const std::string kernel = dir.path() + "/halt.elf";
  auto image = vmm::testing::make_minimal_elf();
  std::ofstream(kernel, std::ios::binary).write(reinterpret_cast<const char*>(image.data()),
                                                 static_cast<std::streamsize>(image.size()));
  CapturedConsole console;
  auto config = pausing(console);
  config.kernel_path = kernel;
  auto vm = vmm::Vm::create(config);
  try {
    snapshot::boot_and_snapshot(*vm, dir.path() + "/snap", 50ms);
    ADD_FAILURE() << "a guest that halts at once cannot have reached boot-complete";
  } catch (const snapshot::BootIncomplete& e) {
    EXPECT_NE(std::string(e.what()).find("no boot-complete write within 50 ms"), std::string::npos) << e.what();
  }
  EXPECT_EQ(vm->state(), vmm::RunState::kStopped);
  EXPECT_FALSE(std::filesystem::exists(dir.path() + "/snap"));
}

TEST(BootAndSnapshot, AVmThatDoesNotPauseAtBootCompleteIsAProgrammingError) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  CapturedConsole console;
  auto config = pausing(console);
  config.boot_complete_action = vmm::BootCompleteAction::kStop;
  auto vm = vmm::Vm::create(config);
  EXPECT_THROW(snapshot::boot_and_snapshot(*vm, dir.path(), 60s), std::logic_error);
}

}  // namespace
}  // namespace thaw
