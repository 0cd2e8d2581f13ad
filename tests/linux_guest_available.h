// Whether a Linux guest can boot here, for tests that skip with the reason
// where it cannot: it needs hardware KVM (kvm_intel or kvm_amd; on PVM its
// ring 0 is emulated too slowly to reach init, ../shared/PLATFORM.md) and a
// microVM kernel (deploy/linux/build-kernel.sh writes build/linux/bzImage;
// THAW_LINUX_KERNEL names another).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <string>

#include "tests/kvm_available.h"
#include "vmm/kvm_host_check.h"

namespace thaw::testing {

// The kernel the tests boot: $THAW_LINUX_KERNEL, else the build script's
// default output (THAW_DEFAULT_LINUX_KERNEL, set by CMake).
inline std::string linux_guest_kernel() {
  if (const char* env = std::getenv("THAW_LINUX_KERNEL"); env != nullptr && *env != '\0') return env;
#ifdef THAW_DEFAULT_LINUX_KERNEL
  return THAW_DEFAULT_LINUX_KERNEL;
#else
  return {};
#endif
}

// Extra words for the test guests' command line: $THAW_LINUX_CMDLINE (e.g.
// idle=poll, to try whether the emulated machine's stalls follow the
// guest's HLT), else none.
inline std::string linux_guest_extra_cmdline() {
  const char* env = std::getenv("THAW_LINUX_CMDLINE");
  return env != nullptr ? env : "";
}

// Why a Linux guest cannot be booted here, or empty when it can.
inline std::string linux_guest_unavailable_reason() {
  auto why = kvm_unavailable_reason();
  if (!why.empty()) return "needs KVM: " + why;
  if (vmm::host_kvm_is_pvm()) {
    return "needs hardware KVM (kvm_intel or kvm_amd): this host's KVM is PVM, where Linux's emulated ring 0 "
           "does not reach init (run under ../shared/nested-kvm/run)";
  }
  std::string kernel = linux_guest_kernel();
  std::error_code ec;
  if (kernel.empty() || !std::filesystem::is_regular_file(kernel, ec)) {
    return "no Linux guest kernel at '" + kernel + "': build one with deploy/linux/build-kernel.sh or set "
           "THAW_LINUX_KERNEL";
  }
  return {};
}

#define THAW_REQUIRE_LINUX_GUEST()                                   \
  do {                                                               \
    auto why = ::thaw::testing::linux_guest_unavailable_reason();    \
    if (!why.empty()) GTEST_SKIP() << why;                           \
  } while (0)

}  // namespace thaw::testing
