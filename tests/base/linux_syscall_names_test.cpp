#include "base/linux_syscall_names.h"

#include <gtest/gtest.h>

namespace thaw {
namespace {

TEST(LinuxSyscallNames, KnownNumbersHaveTheKernelsNames) {
  EXPECT_EQ(linux_syscall_name(0), "read");
  EXPECT_EQ(linux_syscall_name(57), "fork");
  EXPECT_EQ(linux_syscall_name(231), "exit_group");
  EXPECT_EQ(linux_syscall_name(435), "clone3");
}

TEST(LinuxSyscallNames, UnknownNumbersAreSpelledOut) {
  EXPECT_EQ(linux_syscall_name(999), "syscall 999");
  EXPECT_EQ(linux_syscall_name(~0ull), "syscall 18446744073709551615");
}

}  // namespace
}  // namespace thaw
