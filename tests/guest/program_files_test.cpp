// Files through the syscall dispatcher: open/read/lseek/fstat/getdents64,
// paths, /tmp, /dev, stdout.
#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

#include "runtime_fixture.h"

namespace thaw_guest_test {
namespace {

constexpr uint64_t kRead = 0, kWrite = 1, kClose = 3, kFstat = 5, kLseek = 8, kReadv = 19, kWritev = 20,
                   kDup2 = 33, kGetcwd = 79, kChdir = 80, kUnlink = 87, kReadlink = 89, kGetdents64 = 217, kNewfstatat = 262;
constexpr uint64_t O_WRONLY = 1, O_RDWR = 2, O_CREAT = 0100, O_APPEND = 02000, O_DIRECTORY = 0200000;
constexpr uint64_t kBuf = kScratch + 0x10000;

TEST_F(RuntimeTest, OpensAndReadsArchiveFilesByAbsoluteAndRelativePaths) {
  int64_t fd = open("/etc/hello.txt");
  ASSERT_EQ(fd, 3);
  EXPECT_EQ(read_all(fd), "hello, world\n");
  EXPECT_EQ(sys(kClose, 3), 0);
  EXPECT_EQ(sys(kClose, 3), -PERR_BADF);
  EXPECT_EQ(sys(kChdir, put_string("/etc/../etc/.")), 0);
  fd = open("hello.txt");
  EXPECT_EQ(read_all(fd), "hello, world\n");
  EXPECT_EQ(read_all(open("../bin//tool")), "#!tool");
  EXPECT_EQ(read_all(open("link")), "hello, world\n");  // a final symlink is followed
  EXPECT_EQ(open("/nope"), -PERR_NOENT);
  EXPECT_EQ(open("/etc/hello.txt", O_WRONLY), -PERR_ROFS);
  EXPECT_EQ(open("/etc/hello.txt", O_DIRECTORY), -PERR_NOTDIR);
  EXPECT_EQ(sys(kGetcwd, kBuf, 64), 5);
  EXPECT_STREQ(reinterpret_cast<char *>(at(kBuf)), "/etc");
  EXPECT_EQ(sys(kGetcwd, kBuf, 4), -PERR_RANGE);
}

TEST_F(RuntimeTest, LseekAndFstatSeeTheFileSize) {
  int64_t fd = open("/etc/hello.txt");
  EXPECT_EQ(sys(kLseek, fd, 7, 0), 7);
  EXPECT_EQ(read_all(fd), "world\n");
  EXPECT_EQ(sys(kLseek, fd, -3, 2), 10);
  EXPECT_EQ(sys(kLseek, fd, -30, 1), -PERR_INVAL);
  EXPECT_EQ(sys(kLseek, 0, 0, 1), -PERR_SPIPE);
  ASSERT_EQ(sys(kFstat, fd, kBuf), 0);
  uint32_t mode;
  int64_t size;
  std::memcpy(&mode, at(kBuf + 24), 4);
  std::memcpy(&size, at(kBuf + 48), 8);
  EXPECT_EQ(mode, 0100644u);
  EXPECT_EQ(size, 13);
  ASSERT_EQ(sys(kNewfstatat, static_cast<uint64_t>(-100), put_string("/etc"), kBuf, 0), 0);
  std::memcpy(&mode, at(kBuf + 24), 4);
  EXPECT_EQ(mode & 0170000, 040000u);
  ASSERT_EQ(sys(kNewfstatat, static_cast<uint64_t>(-100), put_string("/etc/link"), kBuf, 0x100), 0);
  std::memcpy(&mode, at(kBuf + 24), 4);
  EXPECT_EQ(mode & 0170000, 0120000u);  // AT_SYMLINK_NOFOLLOW: the link itself
}

TEST_F(RuntimeTest, Getdents64ListsADirectory) {
  int64_t fd = open("/", O_DIRECTORY);
  ASSERT_GE(fd, 0);
  std::set<std::string> names;
  for (;;) {
    int64_t n = sys(kGetdents64, fd, kBuf, 64);  // small buffer: several calls
    ASSERT_GE(n, 0);
    if (n == 0) break;
    for (int64_t at_byte = 0; at_byte < n;) {
      uint16_t reclen;
      std::memcpy(&reclen, at(kBuf + at_byte + 16), 2);
      names.insert(reinterpret_cast<char *>(at(kBuf + at_byte + 19)));
      at_byte += reclen;
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{".", "..", "etc", "bin", "dev", "tmp", "proc"}));
  EXPECT_EQ(sys(kGetdents64, fd, kBuf, 8), 0);  // at the end already
  int64_t file = open("/etc/hello.txt");
  EXPECT_EQ(sys(kGetdents64, file, kBuf, 64), -PERR_NOTDIR);
}

TEST_F(RuntimeTest, ReadlinkOfProcSelfExeNamesTheProgram) {
  EXPECT_EQ(sys(kReadlink, put_string("/proc/self/exe"), kBuf, 64), 9);
  EXPECT_EQ(get(kBuf, 9), "/bin/tool");
  EXPECT_EQ(sys(kReadlink, put_string("/etc/hello.txt"), kBuf, 64), -PERR_INVAL);
}

TEST_F(RuntimeTest, TmpFilesAreWritableReadableAndUnlinkable) {
  int64_t fd = open("/tmp/out.txt", O_CREAT | O_RDWR);
  ASSERT_EQ(fd, 3);
  std::memcpy(at(kBuf), "0123456789", 10);
  EXPECT_EQ(sys(kWrite, fd, kBuf, 10), 10);
  EXPECT_EQ(sys(kLseek, fd, 2, 0), 2);
  EXPECT_EQ(read_all(fd), "23456789");
  EXPECT_EQ(sys(kClose, fd), 0);
  fd = open("/tmp/out.txt", O_WRONLY | O_APPEND);
  EXPECT_EQ(sys(kWrite, fd, kBuf, 3), 3);
  sys(kClose, fd);
  EXPECT_EQ(read_all(open("/tmp/out.txt")), "0123456789012");
  // Large writes grow the storage (it moves) and keep the contents.
  fd = open("/tmp/big", O_CREAT | O_WRONLY);
  for (int i = 0; i < 40; i++) {
    std::memset(at(kBuf), 'a' + i % 26, 4096);
    ASSERT_EQ(sys(kWrite, fd, kBuf, 4096), 4096);
  }
  std::string big = read_all(open("/tmp/big"));
  ASSERT_EQ(big.size(), 40u * 4096);
  EXPECT_EQ(big[39 * 4096], 'a' + 13);
  EXPECT_EQ(sys(kUnlink, put_string("/tmp/out.txt")), 0);
  EXPECT_EQ(open("/tmp/out.txt"), -PERR_NOENT);
  EXPECT_EQ(sys(kUnlink, put_string("/etc/hello.txt")), -PERR_ROFS);
  EXPECT_EQ(open("/etc/new", O_CREAT | O_WRONLY), -PERR_ROFS);
}

TEST_F(RuntimeTest, DevicesBehaveLikeLinux) {
  int64_t null_fd = open("/dev/null", O_RDWR);
  EXPECT_EQ(sys(kWrite, null_fd, kBuf, 100), 100);
  EXPECT_EQ(sys(kRead, null_fd, kBuf, 100), 0);
  std::memset(at(kBuf), 0xff, 16);
  EXPECT_EQ(sys(kRead, open("/dev/zero"), kBuf, 16), 16);
  EXPECT_EQ(get(kBuf, 16), std::string(16, '\0'));
  EXPECT_EQ(sys(kRead, open("/dev/urandom"), kBuf, 16), 16);
  EXPECT_NE(get(kBuf, 16), std::string(16, '\0'));
}

TEST_F(RuntimeTest, UserPointersOutsideUserMemoryGiveEfault) {
  int64_t fd = open("/etc/hello.txt");
  EXPECT_EQ(sys(kRead, fd, 0x1000, 4), -PERR_FAULT);            // kernel memory
  EXPECT_EQ(sys(kRead, fd, kStackTop - 2, 4), -PERR_FAULT);     // runs past the end
  EXPECT_EQ(sys(kRead, fd, kStackTop, 1), -PERR_FAULT);
  EXPECT_EQ(sys(kRead, fd, ~0ull - 1, 4), -PERR_FAULT);         // wraps around
  EXPECT_EQ(sys(kWrite, 1, 0x100000, 4), -PERR_FAULT);
  EXPECT_EQ(sys(257, static_cast<uint64_t>(-100), 0x80000, 0), -PERR_FAULT);
  // A path that runs into the end of user memory without a NUL.
  std::memset(at(kStackTop - 4), 'a', 4);
  EXPECT_EQ(sys(257, static_cast<uint64_t>(-100), kStackTop - 4, 0), -PERR_FAULT);
  EXPECT_EQ(sys(kFstat, fd, 0x200000 - 8), -PERR_FAULT);
  EXPECT_EQ(sys(kRead, fd, 0x1000, 0), 0);  // nothing to copy, like Linux
}

// A program may keep its iovec array at any address; the runtime copies
// each entry out instead of reading it as an aligned uint64_t (UBSan, in
// fuzz_guest_syscalls, caught the aligned read).
TEST_F(RuntimeTest, ReadvAndWritevTakeIovecsAtAnyAlignment) {
  auto put_iovec = [&](uint64_t at_addr, std::initializer_list<std::pair<uint64_t, uint64_t>> entries) {
    for (auto [base, len] : entries) {
      std::memcpy(at(at_addr), &base, 8);
      std::memcpy(at(at_addr + 8), &len, 8);
      at_addr += 16;
    }
  };
  std::memcpy(at(kBuf), "abcd", 4);
  put_iovec(kBuf + 0x103, {{kBuf, 2}, {kBuf + 2, 2}});
  EXPECT_EQ(sys(kWritev, 1, kBuf + 0x103, 2), 4);
  EXPECT_EQ(stdout_text(), "abcd");

  int64_t fd = open("/etc/hello.txt");
  put_iovec(kBuf + 0x205, {{kBuf + 0x400, 5}, {kBuf + 0x500, 8}});
  EXPECT_EQ(sys(kReadv, fd, kBuf + 0x205, 2), 13);
  EXPECT_EQ(get(kBuf + 0x400, 5), "hello");
  EXPECT_EQ(get(kBuf + 0x500, 8), ", world\n");
}

// open("", O_CREAT) is ENOENT and creates nothing. The runtime once went
// on to create a /tmp file from whatever name and length the stack held:
// here, those of the open just before, unlinked in between.
TEST_F(RuntimeTest, CreatingAnEmptyPathIsEnoentAndCreatesNothing) {
  int64_t fd = open("/tmp/was-here", O_CREAT | O_WRONLY);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(sys(kClose, fd), 0);
  EXPECT_EQ(sys(kUnlink, put_string("/tmp/was-here")), 0);
  EXPECT_EQ(open("", O_CREAT | O_WRONLY), -PERR_NOENT);
  EXPECT_EQ(open("/tmp/was-here"), -PERR_NOENT);
  for (const auto &slot : rt->tmp) EXPECT_FALSE(slot.linked) << std::string(slot.name, slot.name_len);
}

TEST_F(RuntimeTest, Dup2SharesTheOffsetAndRedirectsStdout) {
  int64_t fd = open("/tmp/log", O_CREAT | O_WRONLY);
  EXPECT_EQ(sys(kDup2, fd, 1), 1);
  std::memcpy(at(kBuf), "hi", 2);
  EXPECT_EQ(sys(kWrite, 1, kBuf, 2), 2);
  EXPECT_EQ(sys(kWrite, fd, kBuf, 2), 2);
  EXPECT_EQ(read_all(open("/tmp/log")), "hihi");
  EXPECT_EQ(mailbox()->stdout_len, 0u);
}

}  // namespace
}  // namespace thaw_guest_test
