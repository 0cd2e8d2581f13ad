// The vCPU threads of a real VM run under the seccomp filter: the kernel
// reports them filtered with no_new_privs, the guest boots and runs under
// it, and a device handler (here the console sink, which runs on the vCPU
// thread) that makes a forbidden call ends the process, naming the call.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <string>
#include <thread>

#include "base/seccomp_filter.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/vcpu_seccomp.h"
#include "tests/integration/kvm_test_support.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using testing::CapturedConsole;

// The "Key:\tvalue" line of /proc/self/task/<tid>/status.
std::string task_status(pid_t tid, const std::string& key) {
  std::ifstream in("/proc/self/task/" + std::to_string(tid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) == 0) {
      auto value = line.substr(key.size() + 1);
      return value.substr(value.find_first_not_of(" \t"));
    }
  }
  return "(no " + key + " line)";
}

vmm::VmConfig pausing_config(vmm::ConsoleSink sink) {
  CapturedConsole unused;
  auto config = testing::mini_config("console=ttyS0 thaw.fn_bytes=4096", unused);
  config.console = std::move(sink);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  return config;
}

TEST(VcpuSeccompKvm, VcpuThreadsAreFilteredAndTheGuestBootsUnderTheFilter) {
  THAW_REQUIRE_KVM();
  CapturedConsole console;
  std::atomic<pid_t> vcpu_tid{0};
  auto sink = console.sink();
  auto config = pausing_config([&](std::span<const char> bytes) {
    vcpu_tid.store(static_cast<pid_t>(::syscall(SYS_gettid)));
    sink(bytes);
  });
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(60s)) << console.text();
  ASSERT_EQ(vm->state(), vmm::RunState::kPaused) << vm->stop_detail() << "\n" << console.text();
  ASSERT_TRUE(console.contains("thaw-mini: ready")) << console.text();
  // The vCPU thread is parked, not gone: the kernel shows its filter.
  pid_t tid = vcpu_tid.load();
  ASSERT_NE(tid, 0);
  ASSERT_NE(tid, static_cast<pid_t>(::syscall(SYS_gettid))) << "console bytes must arrive on the vCPU thread";
  EXPECT_EQ(task_status(tid, "Seccomp"), "2");
  EXPECT_EQ(task_status(tid, "NoNewPrivs"), "1");
  // This thread (the VMM's) is not filtered.
  EXPECT_EQ(seccomp_mode_of_this_thread(), 0);
  vm->stop();
}

// A device on a vCPU thread raises and lowers its irqchip line (the 8250
// under an interrupt-driven driver): the filter lets KVM_IRQ_LINE through.
// Before it did, Linux's serial driver ended the VMM at its first line.
TEST(VcpuSeccompKvm, ADeviceInterruptLineWorksUnderTheFilter) {
  THAW_REQUIRE_KVM();
  auto kvm = vmm::kvm::KvmSystem::open();
  auto vm = kvm.create_vm();
  vm.create_irqchip();
  std::string error;
  std::thread filtered([&] {
    vmm::prepare_thread_for_vcpu_filter();
    vmm::vcpu_thread_filter().apply_to_this_thread();
    try {
      vm.set_irq_line(4, true);
      vm.set_irq_line(4, false);
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  filtered.join();
  EXPECT_EQ(error, "");
}

TEST(VcpuSeccompKvm, WithoutTheFilterTheThreadIsUnfiltered) {
  THAW_REQUIRE_KVM();
  std::atomic<pid_t> vcpu_tid{0};
  auto config = pausing_config([&](std::span<const char>) { vcpu_tid.store(static_cast<pid_t>(::syscall(SYS_gettid))); });
  config.vcpu_seccomp = false;
  auto vm = vmm::Vm::create(config);
  vm->start();
  ASSERT_TRUE(vm->wait(60s));
  ASSERT_NE(vcpu_tid.load(), 0);
  EXPECT_EQ(task_status(vcpu_tid.load(), "Seccomp"), "0");
  vm->stop();
}

TEST(VcpuSeccompKvm, AForbiddenCallOnTheVcpuThreadEndsTheProcess) {
  THAW_REQUIRE_KVM();
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  // What a device bug turned into code execution would try first.
  auto escape = [](std::span<const char>) { ::socket(AF_INET, SOCK_STREAM, 0); };
  EXPECT_EXIT(
      {
        auto vm = vmm::Vm::create(pausing_config(escape));
        vm->start();
        vm->wait(60s);
        ::syscall(SYS_exit_group, 0);  // reached only if the call was allowed
      },
      ::testing::ExitedWithCode(kSeccompExitStatus),
      "thaw: seccomp: thread [0-9]+ \\(filter 'vcpu'\\) made a forbidden system call 41 \\(socket\\)");
}

}  // namespace
}  // namespace thaw
