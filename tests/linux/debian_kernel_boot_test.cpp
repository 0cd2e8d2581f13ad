// A real kernel nobody in this project wrote: Debian's cloud kernel (a
// bzImage) boots through thaw far enough to print its banner, the e820 map
// thaw gave it and the command line thaw passed. The kernel is fetched by
// the ctest fixture tests/linux/fetch_debian_kernel.sh.
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/integration/kvm_test_support.h"
#include "vmm/kvm/kvm_system.h"
#include "vmm/x86_64/layout.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;

std::string e820_line(uint64_t start, uint64_t end_inclusive, const char* type) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "BIOS-e820: [mem 0x%016llx-0x%016llx] %s", static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(end_inclusive), type);
  return buf;
}

TEST(DebianKernel, PrintsBannerE820AndCommandLine) {
  THAW_REQUIRE_KVM();
  const std::string kernel = std::string(THAW_BUILD_DIR) + "/debian-kernel/vmlinuz";
  if (!std::filesystem::exists(kernel)) {
    GTEST_SKIP() << kernel << " is missing: the fetch_debian_kernel fixture could not download "
                 << "linux-image-cloud-amd64 (no Debian mirror reachable?)";
  }
  // PVM emulates guest ring 0 and cannot run XRSTOR there (PLATFORM.md);
  // nokaslr spares the decompressor's emulated PIT-based entropy loop.
  bool pvm = vmm::kvm::detect_backend() == vmm::kvm::KvmBackend::kPvm;
  std::string cmdline = "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=-1";
  if (pvm) cmdline += " noxsave nokaslr";

  testing::CapturedConsole console;
  vmm::VmConfig config;
  config.kernel_path = kernel;
  config.cmdline = cmdline;
  config.mem_mib = 256;
  config.console = console.sink();
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  auto vm = vmm::Vm::create(config);
  EXPECT_EQ(vm->boot_info().format, vmm::x86::KernelFormat::kBzImage);
  vm->start();

  const uint64_t ram_end = 256ULL << 20;
  std::vector<std::string> wanted = {
      "Linux version 6.",
      e820_line(0, vmm::x86::kEbdaStart - 1, "usable"),
      e820_line(vmm::x86::kHighMemStart, ram_end - 1, "usable"),
      "Command line: " + cmdline,
  };
  bool all = console.wait_for_all(wanted, 300s);
  vm->stop();
  std::string out = console.text();
  for (const auto& w : wanted) EXPECT_NE(out.find(w), std::string::npos) << "missing '" << w << "'";
  EXPECT_TRUE(all) << "console so far:\n" << out.substr(0, 8000) << "\nVM: " << vmm::stop_reason_name(vm->stop_reason())
                   << " " << vm->stop_detail();
  EXPECT_FALSE(vmm::stop_reason_is_failure(vm->stop_reason()) && vm->stop_reason() != vmm::StopReason::kTimeout)
      << vm->stop_detail();
}

}  // namespace
}  // namespace thaw
