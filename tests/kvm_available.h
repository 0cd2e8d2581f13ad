// Whether /dev/kvm can be used, for tests that skip with the reason where it
// cannot (tests/integration/kvm_test_support.h, tests/rpc/thawd_process.h).
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <gtest/gtest.h>

namespace thaw::testing {

// Why /dev/kvm cannot be used here, or empty when it can.
inline std::string kvm_unavailable_reason() {
  int fd = ::open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (fd < 0) return std::string("/dev/kvm cannot be opened: ") + std::strerror(errno);
  ::close(fd);
  return {};
}

// Skips the calling test (from its body or SetUp) where /dev/kvm cannot be used.
#define THAW_REQUIRE_KVM()                                             \
  do {                                                                 \
    auto why = ::thaw::testing::kvm_unavailable_reason();              \
    if (!why.empty()) GTEST_SKIP() << "needs KVM: " << why;            \
  } while (0)

}  // namespace thaw::testing
