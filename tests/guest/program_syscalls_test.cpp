// The dispatcher, the ready point, the end of a request, faults, clocks and
// randomness.
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "runtime_fixture.h"

namespace thaw_guest_test {
namespace {

constexpr uint64_t kRead = 0, kWrite = 1, kPoll = 7, kClockGettime = 228, kExitGroup = 231, kGetrandom = 318,
                   kArchPrctl = 158, kUname = 63, kPrlimit = 302, kNanosleep = 35;
constexpr uint64_t kBuf = kScratch + 0x10000;

TEST_F(RuntimeTest, TheFirstStdinReadIsTheReadyPoint) {
  std::memcpy(at(kBuf), "boot noise", 10);
  EXPECT_EQ(sys(kWrite, 1, kBuf, 10), 10);
  EXPECT_EQ(mailbox()->stdout_len, 10u);
  EXPECT_EQ(fake_arch.ready_points, 0);
  set_stdin("input bytes");
  EXPECT_EQ(sys(kRead, 0, kBuf, 5), 5);
  EXPECT_EQ(fake_arch.ready_points, 1);
  EXPECT_EQ(mailbox()->stdout_len, 0u);  // output before the ready point is dropped
  EXPECT_EQ(get(kBuf, 5), "input");
  EXPECT_EQ(sys(kRead, 0, kBuf, 100), 6);
  EXPECT_EQ(get(kBuf, 6), " bytes");
  EXPECT_EQ(sys(kRead, 0, kBuf, 100), 0);  // EOF
  EXPECT_EQ(fake_arch.ready_points, 1);
  std::memcpy(at(kBuf), "out", 3);
  EXPECT_EQ(sys(kWrite, 1, kBuf, 3), 3);
  EXPECT_EQ(stdout_text(), "out");
  EXPECT_EQ(mailbox()->syscalls, 4u);  // counted from the ready point's read on
  EXPECT_FALSE(rt->finished);
  sys(kExitGroup, 0x1234);
  EXPECT_TRUE(rt->finished);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_SUCCESS);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_EXITED));
  EXPECT_EQ(mailbox()->status, 0x34u);
}

TEST_F(RuntimeTest, WrongMailboxMagicMeansEmptyStdinAndPollIsAReadToo) {
  mailbox()->magic = 0;
  mailbox()->stdin_len = 100;
  int32_t pollfd[2] = {0, 1};  // fd 0, events POLLIN
  std::memcpy(at(kBuf), pollfd, 8);
  EXPECT_EQ(sys(kPoll, kBuf, 1, 0), 1);
  EXPECT_EQ(fake_arch.ready_points, 1);
  EXPECT_EQ(sys(kRead, 0, kBuf, 10), 0);
}

TEST_F(RuntimeTest, ExitBeforeTheReadyPointIsNotReady) {
  sys(60, 3);
  EXPECT_TRUE(rt->finished);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_PROGRAM_NOT_READY);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_NOT_READY));
  EXPECT_EQ(mailbox()->status, 3u);
}

// reboot(2) is checked as Linux checks it; a real power-off, halt or
// restart ends the program and the guest with EXIT_CODE_POWER_OFF.
TEST_F(RuntimeTest, RebootWithLinuxsMagicEndsTheGuestAndWrongMagicIsEinval) {
  constexpr uint64_t kReboot = 169, kMagic1 = 0xfee1dead, kMagic2 = 0x28121969;
  set_stdin("");
  sys(kRead, 0, kBuf, 1);
  EXPECT_EQ(sys(kReboot, 0xfee1deae, kMagic2, 0x4321fedc), -PERR_INVAL);
  EXPECT_EQ(sys(kReboot, kMagic1, 1234, 0x4321fedc), -PERR_INVAL);
  EXPECT_EQ(sys(kReboot, kMagic1, kMagic2, 0x45584543), -PERR_INVAL);  // kexec
  EXPECT_EQ(sys(kReboot, kMagic1, kMagic2, 0), 0);                     // Ctrl-Alt-Del off: nothing to do
  EXPECT_FALSE(rt->finished);
  EXPECT_EQ(sys(kReboot, kMagic1, 0x05121996, 0xcdef0123), 0);  // halt, with another accepted magic
  EXPECT_TRUE(rt->finished);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_POWER_OFF);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_POWER_OFF));
  EXPECT_EQ(mailbox()->status, static_cast<uint64_t>(POWER_OFF_HALT));
}

TEST_F(RuntimeTest, StdoutOverItsCapacityEndsWithOutputLimit) {
  set_stdin("");
  sys(kRead, 0, kBuf, 1);
  uint64_t chunk = 0x80000;  // 512 KiB from user memory
  EXPECT_EQ(sys(kWrite, 1, kBuf, chunk), static_cast<int64_t>(chunk));
  EXPECT_EQ(sys(kWrite, 1, kBuf, chunk), static_cast<int64_t>(chunk));
  EXPECT_FALSE(rt->finished);  // exactly full is fine
  sys(kWrite, 1, kBuf, 1);
  EXPECT_TRUE(rt->finished);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_SUCCESS);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_OUTPUT_LIMIT));
  EXPECT_EQ(mailbox()->stdout_len, MAILBOX_STDOUT_CAPACITY);
}

TEST_F(RuntimeTest, UnknownSyscallsAreRecordedOnceEach) {
  EXPECT_EQ(sys(999), -PERR_NOSYS);
  EXPECT_EQ(sys(41), -PERR_NOSYS);  // socket
  EXPECT_EQ(sys(999), -PERR_NOSYS);
  EXPECT_EQ(mailbox()->unknown_syscall_count, 2u);
  EXPECT_EQ(mailbox()->unknown_syscalls[0], 999);
  EXPECT_EQ(mailbox()->unknown_syscalls[1], 41);
  EXPECT_EQ(fake_arch.log, (std::vector<std::string>{"unknown syscall 999", "unknown syscall 41"}));
  EXPECT_EQ(sys(57), -PERR_NOSYS);  // fork: expected to fail, not "unknown"
  EXPECT_EQ(mailbox()->unknown_syscall_count, 2u);
  for (uint64_t nr = 1000; nr < 1100; nr++) sys(nr);
  EXPECT_EQ(mailbox()->unknown_syscall_count, static_cast<uint64_t>(MAILBOX_UNKNOWN_SYSCALLS_MAX));
}

TEST_F(RuntimeTest, GetrandomDiffersBySeedAndBetweenCalls) {
  set_stdin("");
  control[CONTROL_OFF_SEED / 8] = 1;
  sys(kRead, 0, kBuf, 1);
  ASSERT_EQ(sys(kGetrandom, kBuf, 32, 0), 32);
  std::string first = get(kBuf, 32);
  ASSERT_EQ(sys(kGetrandom, kBuf, 32, 0), 32);
  EXPECT_NE(get(kBuf, 32), first);
  // Another clone of the same snapshot, with another seed.
  SetUp();
  set_stdin("");
  control[CONTROL_OFF_SEED / 8] = 2;
  sys(kRead, 0, kBuf, 1);
  ASSERT_EQ(sys(kGetrandom, kBuf, 32, 0), 32);
  EXPECT_NE(get(kBuf, 32), first);
  // And the same seed again gives the same bytes (a reproducible clone).
  SetUp();
  set_stdin("");
  control[CONTROL_OFF_SEED / 8] = 1;
  sys(kRead, 0, kBuf, 1);
  sys(kGetrandom, kBuf, 32, 0);
  EXPECT_EQ(get(kBuf, 32), first);
  EXPECT_EQ(sys(kGetrandom, 0x1000, 8, 0), -PERR_FAULT);
}

TEST_F(RuntimeTest, ClocksFollowTheControlPageAndTheTsc) {
  set_stdin("");
  fake_arch.tsc = 5000000;
  control[CONTROL_OFF_WALL_CLOCK_NS / 8] = 2000000000ull * 1000000000ull + 5;
  sys(kRead, 0, kBuf, 1);
  fake_arch.tsc += 1500000000;  // 1.5 s at 1 GHz
  ASSERT_EQ(sys(kClockGettime, 0, kBuf), 0);
  int64_t ts[2];
  std::memcpy(ts, at(kBuf), 16);
  EXPECT_EQ(ts[0], 2000000001);
  EXPECT_EQ(ts[1], 500000005);
  ASSERT_EQ(sys(kClockGettime, 1, kBuf), 0);
  std::memcpy(ts, at(kBuf), 16);
  EXPECT_EQ(ts[0], 1);  // 4 ms from boot to the ready point, then 1.5 s
  EXPECT_EQ(ts[1], 504000000);
  int64_t req[2] = {3, 0};
  std::memcpy(at(kBuf + 64), req, 16);
  EXPECT_EQ(sys(kNanosleep, kBuf + 64, 0), 0);
  ASSERT_EQ(sys(kClockGettime, 0, kBuf), 0);
  std::memcpy(ts, at(kBuf), 16);
  EXPECT_EQ(ts[0], 2000000004);  // sleeping advances the clock instead of waiting
}

TEST_F(RuntimeTest, ProcessLevelCalls) {
  EXPECT_EQ(sys(kArchPrctl, 0x1002, 0x7000), 0);
  EXPECT_EQ(fake_arch.fs_base, 0x7000u);
  EXPECT_EQ(sys(kArchPrctl, 0x1003, kBuf), 0);
  uint64_t fs;
  std::memcpy(&fs, at(kBuf), 8);
  EXPECT_EQ(fs, 0x7000u);
  EXPECT_EQ(sys(kArchPrctl, 0x1002, 0x800000000000ull), -PERR_PERM);
  ASSERT_EQ(sys(kUname, kBuf), 0);
  EXPECT_STREQ(reinterpret_cast<char *>(at(kBuf)), "Linux");
  EXPECT_STREQ(reinterpret_cast<char *>(at(kBuf + 4 * 65)), "x86_64");
  ASSERT_EQ(sys(kPrlimit, 0, 3, 0, kBuf), 0);
  uint64_t limit[2];
  std::memcpy(limit, at(kBuf), 16);
  EXPECT_EQ(limit[0], PROGRAM_STACK_SIZE);
  ASSERT_EQ(sys(kPrlimit, 0, 7, 0, kBuf), 0);
  std::memcpy(limit, at(kBuf), 16);
  EXPECT_EQ(limit[0], static_cast<uint64_t>(PROGRAM_MAX_FDS));
  EXPECT_EQ(sys(218, 0), 1);  // set_tid_address
  EXPECT_EQ(sys(39), 1);      // getpid
  EXPECT_EQ(sys(334, 0, 0, 0, 0), -PERR_NOSYS);  // rseq
}

TEST_F(RuntimeTest, FaultsMapToSignals) {
  set_stdin("");
  sys(kRead, 0, kBuf, 1);
  program_fault(rt.get(), 14, 0x401234, 0xdead000);
  EXPECT_TRUE(rt->finished);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_SUCCESS);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_FAULT));
  EXPECT_EQ(mailbox()->status, static_cast<uint64_t>(PROGRAM_SIGSEGV));
  EXPECT_EQ(mailbox()->fault_addr, 0xdead000u);
  EXPECT_EQ(mailbox()->fault_rip, 0x401234u);
  EXPECT_EQ(program_signal_for_vector(6), PROGRAM_SIGILL);
  EXPECT_EQ(program_signal_for_vector(0), PROGRAM_SIGFPE);
  EXPECT_EQ(program_signal_for_vector(19), PROGRAM_SIGFPE);
  EXPECT_EQ(program_signal_for_vector(17), PROGRAM_SIGBUS);
  EXPECT_EQ(program_signal_for_vector(3), PROGRAM_SIGTRAP);
  EXPECT_EQ(program_signal_for_vector(13), PROGRAM_SIGSEGV);
}

TEST_F(RuntimeTest, AFaultBeforeTheReadyPointIsNotReady) {
  program_fault(rt.get(), 6, 0x401000, 0);
  EXPECT_EQ(rt->exit_code, EXIT_CODE_PROGRAM_NOT_READY);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_FAULT));
  EXPECT_EQ(mailbox()->status, static_cast<uint64_t>(PROGRAM_SIGILL));
  EXPECT_EQ(mailbox()->fault_addr, 0u);
}

TEST(ProgramInfoCheck, AcceptsAConsistentPageAndRejectsEachBadField) {
  thaw_program_info good{};
  good.magic = PROGRAM_INFO_MAGIC;
  good.version = PROGRAM_INFO_VERSION;
  good.entry = 0x401000;
  good.brk_start = 0x600000;
  good.mmap_top = good.stack_bottom = 0x3800000;
  good.stack_top = 0x4000000;
  good.stack_pointer = 0x3fff000;
  good.files_addr = 0x4000000;
  good.files_size = 0x1000;
  good.mailbox_addr = 0x4001000;
  good.mailbox_size = MAILBOX_SIZE;
  good.ram_top = 0x8000000;
  std::strcpy(good.exe_path, "/bin/x");
  EXPECT_EQ(program_info_check(&good, 0x8000000), nullptr);
  EXPECT_EQ(program_info_check(&good, 0), nullptr);
  auto bad = [&](auto change) {
    thaw_program_info info = good;
    change(info);
    return program_info_check(&info, 0x8000000) != nullptr;
  };
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.magic++; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.version = 2; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.entry = 0x100000; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.stack_pointer = i.stack_top; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.files_addr = 0x3f00000; }));  // its 2 MiB page holds the stack
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.files_size = 0x2000; }));      // runs into the mailbox
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.ram_top = 0x9000000; }));     // beyond RAM
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.mailbox_size = 0x1000; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.brk_start = 0x100000; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { i.stack_bottom = i.stack_top; }));
  EXPECT_TRUE(bad([](thaw_program_info &i) { std::memset(i.exe_path, 'a', sizeof i.exe_path); }));
}

}  // namespace
}  // namespace thaw_guest_test
