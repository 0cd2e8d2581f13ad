// Seccomp filters, applied in a child process (gtest death tests): allowed
// calls run, a call off the list ends the process with kSeccompExitStatus
// and a line naming the filter and the call, and argument conditions hold.
#include "base/seccomp_filter.h"

#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <thread>

namespace thaw {
namespace {

// What every test filter allows: enough to check, and for a thread to end.
std::vector<SeccompRule> basics() {
  return {{__NR_write, {}},  {__NR_exit, {}},  {__NR_prctl, {}},           {__NR_madvise, {}}, {__NR_mmap, {}},
          {__NR_munmap, {}}, {__NR_futex, {}}, {__NR_rt_sigprocmask, {}}, {__NR_brk, {}},     {__NR_mprotect, {}}};
}

class SeccompFilterTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(SeccompFilterTest, CompilesToAProgramAndCountsItsRules) {
  auto filter = SeccompFilter::compile("test", basics());
  EXPECT_EQ(filter.name(), "test");
  EXPECT_EQ(filter.rule_count(), basics().size());
  EXPECT_GT(filter.instruction_count(), basics().size());
}

TEST_F(SeccompFilterTest, AllowedCallsRunAndTheThreadReportsFilterMode) {
  auto filter = SeccompFilter::compile("test", basics());
  EXPECT_EXIT(
      {
        filter.apply_to_this_thread();
        // prctl is allowed here, so the mode can be read back.
        int mode = seccomp_mode_of_this_thread();
        int no_new_privs = ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
        ::syscall(SYS_exit_group, mode == 2 && no_new_privs == 1 ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST_F(SeccompFilterTest, AForbiddenCallEndsTheProcessNamingFilterAndCall) {
  auto filter = SeccompFilter::compile("test", basics());
  EXPECT_EXIT(
      {
        filter.apply_to_this_thread();
        ::syscall(SYS_getppid);
        ::syscall(SYS_exit_group, 0);  // not reached
      },
      ::testing::ExitedWithCode(kSeccompExitStatus),
      "thaw: seccomp: thread [0-9]+ \\(filter 'test'\\) made a forbidden system call 110 \\(getppid\\)");
}

TEST_F(SeccompFilterTest, ArgumentConditionsAreEnforced) {
  auto rules = basics();
  rules.push_back({__NR_ioctl, {{.arg = 1, .mask = 0xffff'ffffull, .value = TIOCGWINSZ}}});
  auto filter = SeccompFilter::compile("ioctl-test", rules);
  // The allowed request runs (failing with ENOTTY on a pipe is fine: it ran).
  EXPECT_EXIT(
      {
        filter.apply_to_this_thread();
        winsize size{};
        ::ioctl(STDIN_FILENO, TIOCGWINSZ, &size);
        ::syscall(SYS_exit_group, 0);
      },
      ::testing::ExitedWithCode(0), "");
  // Another request on the same call is refused.
  EXPECT_EXIT(
      {
        filter.apply_to_this_thread();
        termios attrs{};
        ::ioctl(STDIN_FILENO, TCGETS, &attrs);
        ::syscall(SYS_exit_group, 0);
      },
      ::testing::ExitedWithCode(kSeccompExitStatus), "filter 'ioctl-test'\\) made a forbidden system call 16 \\(ioctl\\)");
}

TEST_F(SeccompFilterTest, TheFilterStaysWithTheThreadOnly) {
  auto filter = SeccompFilter::compile("test", basics());
  // Another thread of the process is unaffected: it may call getppid.
  EXPECT_EXIT(
      {
        std::thread([&] { filter.apply_to_this_thread(); }).join();
        bool other_thread_free = seccomp_mode_of_this_thread() == 0 && ::getppid() > 0;
        ::syscall(SYS_exit_group, other_thread_free ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace thaw
