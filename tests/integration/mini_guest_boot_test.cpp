// Boots thaw's mini guest on /dev/kvm through the real VMM.
#include <gtest/gtest.h>

#include "tests/integration/kvm_test_support.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

TEST(MiniGuestBoot, ReachesBootCompleteWithConsoleAndRing3Result) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  const std::string cmdline = "console=ttyS0 thaw.fn_bytes=65536";
  auto vm = vmm::Vm::create(testing::mini_config(cmdline, console));
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kBootComplete) << vm->stop_detail() << "\n" << console.text();
  ASSERT_TRUE(vm->boot_complete_after().has_value());
  EXPECT_GT(vm->boot_complete_after()->count(), 0);
  EXPECT_GE(*vm->boot_complete_after(), vm->timings().guest_run);
  std::string out = console.text();
  EXPECT_NE(out.find("thaw-mini: booting"), std::string::npos) << out;
  EXPECT_NE(out.find("thaw-mini: cmdline: " + cmdline), std::string::npos) << out;
  // e820 gives the guest [0, 0x9fc00) and [1 MiB, 128 MiB): 127.6 MiB.
  EXPECT_NE(out.find("thaw-mini: ram 127 MiB"), std::string::npos) << out;
  std::string expected = "thaw-mini: fn fnv1a(65536) = " + testing::hex16(testing::mini_guest_fnv1a(65536));
  EXPECT_NE(out.find(expected), std::string::npos) << "want '" << expected << "' in:\n" << out;
  EXPECT_NE(out.find("thaw-mini: ready"), std::string::npos) << out;
}

TEST(MiniGuestBoot, GuestExceptionIsReportedAsFailure) {
  THAW_REQUIRE_KVM();
  for (const char* fault : {"ud", "pf"}) {
    CapturedConsole console;
    auto vm = vmm::Vm::create(testing::mini_config(std::string("console=ttyS0 thaw.fault=") + fault, console));
    vm->start();
    ASSERT_TRUE(vm->wait(60s)) << console.text();
    EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestFailure) << fault << ": " << vm->stop_detail();
    EXPECT_TRUE(vmm::stop_reason_is_failure(vm->stop_reason()));
    EXPECT_FALSE(vm->boot_complete_after().has_value()) << "a faulting guest must not signal boot complete";
    std::string want = std::string("EXCEPTION #") + (std::string(fault) == "ud" ? "UD" : "PF");
    EXPECT_TRUE(console.contains(want)) << "want '" << want << "' in:\n" << console.text();
  }
}

TEST(MiniGuestBoot, HaltVariantSignalsBootCompleteFirst) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("", console);
  config.kernel_path = THAW_MINI_HALT_GUEST;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(30s));
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kBootComplete) << vm->stop_detail();
  EXPECT_TRUE(vm->boot_complete_after().has_value());
  EXPECT_EQ(console.text(), "") << "the halt variant prints nothing";
}

TEST(MiniGuestBoot, PauseAtBootCompleteThenResumeAndStop) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096", console);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  ASSERT_EQ(vm->state(), vmm::RunState::kPaused) << vm->stop_detail();
  EXPECT_TRUE(vm->boot_complete_after().has_value());
  vm->resume();
  EXPECT_EQ(vm->state(), vmm::RunState::kRunning);
  ASSERT_TRUE(vm->pause(5s)) << "an idle guest must pause again";
  vm->resume();
  vm->stop();
  EXPECT_EQ(vm->state(), vmm::RunState::kStopped);
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kHostRequest);
}

TEST(MiniGuestBoot, CleanGuestExitAfterReady) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096 thaw.exit_after_ready=1", console);
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kGuestExit) << vm->stop_detail();
  EXPECT_TRUE(vm->boot_complete_after().has_value());
}

TEST(MiniGuestBoot, BootsWithSeveralVcpus) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096", console);
  config.vcpus = 2;
  auto vm = vmm::Vm::create(config);
  EXPECT_EQ(vm->vcpus().size(), 2u);
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  EXPECT_EQ(vm->stop_reason(), vmm::StopReason::kBootComplete) << vm->stop_detail();
}

}  // namespace
}  // namespace thaw
