// What thaw's mini guest does after its boot-complete write (thaw.after=),
// booted on /dev/kvm through the real VMM. A snapshot is taken at that write,
// so this is what every restored clone runs: a LAPIC timer that must keep
// ticking, work split across the write, and a control page the VMM fills in.
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/kvm_test_support.h"
#include "vmm/control_page.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

// guest/mini/control_page_abi.h, through vmm/control_page.h
using vmm::ControlPage;
constexpr uint64_t kControlPageAddr = vmm::kControlPageAddress;
constexpr uint64_t kControlMagic = vmm::kControlPageMagic;
constexpr uint64_t kCloneBufferAddr = 0x200000;
constexpr uint64_t kCloneBufferSize = 0x10000;


std::vector<uint8_t> expected_clone_bytes(uint64_t clone_input) {
  std::vector<uint8_t> bytes(kCloneBufferSize);
  for (uint64_t i = 0; i < kCloneBufferSize; ++i) {
    bytes[i] = static_cast<uint8_t>(static_cast<uint8_t>(i * 31 + 7) ^ static_cast<uint8_t>(clone_input));
  }
  return bytes;
}

uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

vmm::VmConfig continue_config(const std::string& cmdline, CapturedConsole& console) {
  auto config = testing::mini_config(cmdline, console);
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  return config;
}

TEST(MiniGuestAfterBoot, TicksExitCleanlyOnlyIfTheLapicTimerFires) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(continue_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=ticks:5", console));
  vm->start();
  // A guest whose timer never fires halts forever: wait() times out.
  ASSERT_TRUE(vm->wait(30s)) << "timer did not fire?\n" << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail() << "\n" << console.text();
  EXPECT_TRUE(vm->boot_complete_after().has_value());
  std::string out = console.text();
  EXPECT_NE(out.find("thaw-mini: ready\nthaw-mini: ticks 5\n"), std::string::npos) << out;
}

TEST(MiniGuestAfterBoot, TimerKeepsTickingAfterPauseAtBootComplete) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = continue_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=ticks:3", console);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  ASSERT_EQ(vm->state(), vmm::RunState::kPaused) << vm->stop_detail();
  std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(console.contains("thaw-mini: ticks")) << "the guest ran on while paused";
  vm->resume();
  ASSERT_TRUE(vm->wait(30s)) << "timer did not fire after resume?\n" << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail() << "\n" << console.text();
  EXPECT_TRUE(console.contains("thaw-mini: ticks 3\n")) << console.text();
}

TEST(MiniGuestAfterBoot, SplitHashEqualsStraightHash) {
  THAW_REQUIRE_KVM();
  // Odd N: the halves are [0, 32768) and [32768, 65537).
  for (uint64_t n : {uint64_t{65537}, uint64_t{1}}) {
    CapturedConsole console;
    auto vm = vmm::Vm::create(
        continue_config("console=ttyS0 thaw.fn_bytes=" + std::to_string(n) + " thaw.after=split", console));
    vm->start();
    ASSERT_TRUE(vm->wait(60s)) << console.text();
    EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail() << "\n" << console.text();
    std::string hash = testing::hex16(testing::mini_guest_fnv1a(n));
    std::string out = console.text();
    std::string fn_line = "thaw-mini: fn fnv1a(" + std::to_string(n) + ") = " + hash + "\n";
    std::string split_line = "thaw-mini: split fnv1a(" + std::to_string(n) + ") = " + hash + "\n";
    EXPECT_NE(out.find(fn_line), std::string::npos) << "want '" << fn_line << "' in:\n" << out;
    // The split line comes after the boot-complete write.
    EXPECT_NE(out.find("thaw-mini: ready\n" + split_line), std::string::npos)
        << "want '" << split_line << "' after ready in:\n" << out;
  }
}

TEST(MiniGuestAfterBoot, CloneReadsControlPageAndWritesBuffer) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(continue_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=clone", console));
  const ControlPage page{kControlMagic, 3, 7, 0x0123456789abcdefULL, 1'700'000'000'000'000'000ULL, 0x5a};
  vm->memory().write_obj(vmm::GuestAddress(kControlPageAddr), page, "control page");
  auto buffer = vm->memory().slice(vmm::GuestAddress(kCloneBufferAddr), kCloneBufferSize, "clone buffer");
  const auto expected = expected_clone_bytes(page.clone_input);
  ASSERT_NE(std::memcmp(buffer.data(), expected.data(), kCloneBufferSize), 0) << "buffer filled before boot";

  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail() << "\n" << console.text();
  std::string want = "thaw-mini: clone 7 input 0x5a seed 0x123456789abcdef gen 3 fnv1a = " +
                     testing::hex16(fnv1a(expected)) + "\n";
  std::string out = console.text();
  EXPECT_NE(out.find("thaw-mini: ready\n" + want), std::string::npos) << "want '" << want << "' in:\n" << out;

  buffer = vm->memory().slice(vmm::GuestAddress(kCloneBufferAddr), kCloneBufferSize, "clone buffer");
  ASSERT_EQ(buffer.size(), expected.size());
  size_t first_difference = kCloneBufferSize;
  for (size_t i = 0; i < kCloneBufferSize; ++i) {
    if (buffer[i] != expected[i]) {
      first_difference = i;
      break;
    }
  }
  EXPECT_EQ(first_difference, kCloneBufferSize) << "clone buffer differs at offset " << first_difference;
  // The page itself is the VMM's: the guest only reads it.
  EXPECT_EQ(std::memcmp(vm->memory().slice(vmm::GuestAddress(kControlPageAddr), sizeof page).data(), &page,
                        sizeof page),
            0);
}

TEST(MiniGuestAfterBoot, CloneWithoutControlPageIsGuestFailure) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto vm = vmm::Vm::create(continue_config("console=ttyS0 thaw.fn_bytes=4096 thaw.after=clone", console));
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestFailure) << vm->stop_detail();
  EXPECT_NE(vm->stop_detail().find("0x32"), std::string::npos) << vm->stop_detail();
  EXPECT_TRUE(vm->boot_complete_after().has_value());
  EXPECT_TRUE(console.contains("thaw-mini: ready\nthaw-mini: no control page\n")) << console.text();
  EXPECT_FALSE(console.contains("thaw-mini: clone")) << console.text();
}

}  // namespace
}  // namespace thaw
