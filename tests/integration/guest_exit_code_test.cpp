// How a guest ends its VM with an exit code, in a real VM: a store to the
// boot-complete page's exit byte (what thaw-init uses from ring 3) means
// what the debug-exit port means, and EXIT_CODE_POWER_OFF there is a clean
// "guest powered off", not a failure. The guests are a few instructions in
// a synthetic ELF, so nothing but the code under test can end them.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "guest/mini/layout.h"
#include "tests/integration/snapshot_test_support.h"
#include "tests/vmm/synthetic_images.h"
#include "devices/legacy/boot_complete.h"
#include "vmm/vm.h"
#include "vmm/x86_64/layout.h"

namespace thaw {
namespace {

// The guest's and the VMM's copies of the ABI agree.
static_assert(vmm::x86::kExitCodePowerOff == EXIT_CODE_POWER_OFF);
static_assert(devices::kBootCompleteExitOffset == BOOT_COMPLETE_EXIT_OFFSET);
static_assert(vmm::x86::kBootCompleteMmioAddr == BOOT_COMPLETE_ADDR);

using namespace std::chrono_literals;

// mov eax, addr (zero-extended into rax); mov byte [rax], code; then
// `hlt` forever. Runs in the long mode thaw's ELF boot enters, whose
// identity map covers the MMIO page.
std::vector<uint8_t> store_then_halt(uint32_t addr, uint8_t code) {
  // Filled in place (not an initializer list grown later, which GCC 12's
  // -Warray-bounds misreads in Release).
  std::vector<uint8_t> text(4096, 0x90);
  const uint8_t code_bytes[] = {0xb8,
                                static_cast<uint8_t>(addr),
                                static_cast<uint8_t>(addr >> 8),
                                static_cast<uint8_t>(addr >> 16),
                                static_cast<uint8_t>(addr >> 24),
                                0xc6,
                                0x00,
                                code,
                                0xf4,
                                0xeb,
                                0xfd};
  for (size_t i = 0; i < sizeof code_bytes; ++i) text[i] = code_bytes[i];
  return text;
}

// Boots the synthetic guest and waits for it to stop (or gives up).
std::unique_ptr<vmm::Vm> boot(const std::vector<uint8_t>& text, testing::TempDir& dir,
                              std::chrono::milliseconds wait = 10s) {
  const std::string kernel = dir.path() + "/guest.elf";
  auto image = vmm::testing::make_elf(0x100000, {vmm::testing::ElfSegment{PT_LOAD, 0x100000, text, 0x2000}});
  std::ofstream(kernel, std::ios::binary).write(reinterpret_cast<const char*>(image.data()),
                                                 static_cast<std::streamsize>(image.size()));
  testing::CapturedConsole console;
  auto config = testing::mini_config("", console);
  config.kernel_path = kernel;
  auto vm = vmm::Vm::create(config);
  vm->start();
  vm->wait(wait);
  return vm;
}

TEST(GuestExitCode, PowerOffOnTheBootCompletePageIsACleanPowerOff) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  auto vm = boot(store_then_halt(BOOT_COMPLETE_ADDR + BOOT_COMPLETE_EXIT_OFFSET, EXIT_CODE_POWER_OFF), dir);
  EXPECT_EQ(vm->state(), vmm::RunState::kStopped);
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestPowerOff) << vm->stop_detail();
  EXPECT_FALSE(vmm::stop_reason_is_failure(vm->stop_reason()));
  EXPECT_FALSE(vm->boot_complete_after().has_value());
}

TEST(GuestExitCode, AFailureCodeOnTheBootCompletePageNamesWhereItCameFrom) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  auto vm = boot(store_then_halt(BOOT_COMPLETE_ADDR + BOOT_COMPLETE_EXIT_OFFSET, EXIT_CODE_GUEST_FAILURE), dir);
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestFailure) << vm->stop_detail();
  EXPECT_NE(vm->stop_detail().find("code 0x31 on the boot-complete page's exit byte"), std::string::npos)
      << vm->stop_detail();
}

// The byte next to it is nothing: the guest halts, and only the host's
// deadline (wait()'s) ends the VM.
TEST(GuestExitCode, AStoreBesideTheExitByteEndsNothing) {
  THAW_REQUIRE_KVM();
  testing::TempDir dir;
  auto vm = boot(store_then_halt(BOOT_COMPLETE_ADDR + BOOT_COMPLETE_EXIT_OFFSET + 1, EXIT_CODE_POWER_OFF), dir, 300ms);
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kTimeout) << vm->stop_detail();
  EXPECT_EQ(vm->boot_complete().ignored_writes(), 1u);
}

}  // namespace
}  // namespace thaw
