// The function runtime's ring-3 copies (guest/mini/program_copy.c): which
// copies are queued for the trampoline, with which user addresses, and that
// running the queue leaves exactly what a ring-0 copy would have.
#include <gtest/gtest.h>

#include "runtime_fixture.h"

namespace thaw_guest_test {
namespace {

constexpr uint64_t kBuffer = kScratch + 0x10000;

class CopyTest : public RuntimeTest {
 protected:
  void add_windows() { add_ring3_windows(rt.get(), mailbox_bytes.data()); }
  // One call as the guest makes it: the queue is left for the caller.
  int64_t raw(uint64_t nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0) {
    return program_syscall(rt.get(), nr, a0, a1, a2, a3, 0, 0);
  }
};

TEST_F(CopyTest, AStdinReadIsQueuedWithBothUserAddressesAndLandsWhenRun) {
  add_windows();
  const std::string request(100, 'r');
  set_stdin(request);
  ASSERT_EQ(raw(0, 0, kBuffer, 4096), 100);
  ASSERT_EQ(rt->pending_count, 1u);
  EXPECT_EQ(rt->pending[0].user_dst, kBuffer);
  EXPECT_EQ(rt->pending[0].user_src, kInputAlias + MAILBOX_STDIN_OFFSET);
  EXPECT_EQ(rt->pending[0].len, 100u);
  EXPECT_NE(get(kBuffer, 100), request) << "nothing is copied in ring 0";
  program_run_pending_copies(rt.get());
  EXPECT_EQ(rt->pending_count, 0u);
  EXPECT_EQ(get(kBuffer, 100), request);
}

TEST_F(CopyTest, AStdoutWriteGoesToTheWritableWindowOnly) {
  add_windows();
  set_stdin("");
  ASSERT_EQ(raw(0, 0, kBuffer, 16), 0);  // the ready point
  const std::string out(64, 'o');
  std::memcpy(at(kBuffer), out.data(), out.size());
  ASSERT_EQ(raw(1, 1, kBuffer, out.size()), 64);
  ASSERT_EQ(rt->pending_count, 1u);
  EXPECT_EQ(rt->pending[0].user_dst, kStdoutAlias);
  EXPECT_EQ(rt->pending[0].user_src, kBuffer);
  program_run_pending_copies(rt.get());
  EXPECT_EQ(stdout_text(), out);

  // Without a writable window there is no user address to write to: ring 0 copies.
  rt->windows[0].writable = 0;
  ASSERT_EQ(raw(1, 1, kBuffer, out.size()), 64);
  EXPECT_EQ(rt->pending_count, 0u);
  EXPECT_EQ(stdout_text(), out + out);
}

TEST_F(CopyTest, SmallCopiesAndCopiesWithoutAWindowHappenAtOnce) {
  set_stdin(std::string(200, 's'));
  ASSERT_EQ(raw(0, 0, kBuffer, 8), 8);  // tiny: not worth queuing
  EXPECT_EQ(rt->pending_count, 0u);
  EXPECT_EQ(get(kBuffer, 8), std::string(8, 's'));
  ASSERT_EQ(raw(0, 0, kBuffer, 100), 100);  // no windows: the mailbox has no user address
  EXPECT_EQ(rt->pending_count, 0u);
  EXPECT_EQ(get(kBuffer, 100), std::string(100, 's'));
}

TEST_F(CopyTest, AFullQueueRunsFirstSoCopiesLandInTheirOrder) {
  add_windows();
  std::string request;
  for (int i = 0; i < 12 * 40; ++i) request += static_cast<char>('a' + i % 26);
  set_stdin(request);
  // readv with 12 iovecs of 40 bytes, each overlapping the previous one by
  // 8 bytes: only the call's order gives the right result.
  const uint64_t iov = kScratch + 0x20000;
  for (uint64_t i = 0; i < 12; ++i) {
    uint64_t entry[2] = {kBuffer + 32 * i, 40};
    std::memcpy(at(iov + 16 * i), entry, sizeof entry);
  }
  ASSERT_EQ(raw(19, 0, iov, 12), 480);
  EXPECT_LE(rt->pending_count, static_cast<uint32_t>(PROGRAM_PENDING_COPIES));
  program_run_pending_copies(rt.get());
  std::string expected(32 * 11 + 40, '\0');
  for (size_t i = 0; i < 12; ++i) expected.replace(32 * i, 40, request.substr(40 * i, 40));
  EXPECT_EQ(get(kBuffer, expected.size()), expected);
}

// A /tmp file's storage is user memory, so a program can name it as the
// buffer of its own read or write. Such copies overlap: they are moved in
// ring 0 with memmove semantics, never queued for the forward-only
// trampoline (fuzz_guest_syscalls: ASan memcpy-param-overlap in pwrite).
TEST_F(CopyTest, AFileReadOrWrittenThroughItsOwnStorageMovesLikeMemmove) {
  add_windows();
  std::string original;
  for (int i = 0; i < 64; ++i) original += static_cast<char>('A' + i % 52);
  const int64_t fd = open("/tmp/self", 0102 /* O_CREAT | O_RDWR */);
  ASSERT_GE(fd, 0);
  std::memcpy(at(kBuffer), original.data(), original.size());
  ASSERT_EQ(sys(1, fd, kBuffer, 64), 64);
  const tmp_file &file = rt->tmp[rt->open_files[rt->fds[fd]].node];
  const uint64_t storage = file.addr;
  ASSERT_EQ(get(storage, 64), original);

  // pwrite(fd, storage, 40, 8): the source is the file's first 40 bytes.
  ASSERT_EQ(raw(18, fd, storage, 40, 8), 40);
  EXPECT_EQ(rt->pending_count, 0u);
  std::string expected = original;
  expected.replace(8, 40, original.substr(0, 40));
  EXPECT_EQ(get(storage, 64), expected);

  // pread(fd, storage + 4, 40, 0): read the file into itself, shifted.
  ASSERT_EQ(raw(17, fd, storage + 4, 40, 0), 40);
  EXPECT_EQ(rt->pending_count, 0u) << "an overlapping copy was queued for ring 3";
  program_run_pending_copies(rt.get());
  std::string shifted = expected;
  shifted.replace(4, 40, expected.substr(0, 40));
  EXPECT_EQ(get(storage, 64), shifted);
}

TEST_F(CopyTest, ExitRunsTheQueueSoTheMailboxIsComplete) {
  add_windows();
  set_stdin("");
  ASSERT_EQ(raw(0, 0, kBuffer, 16), 0);
  const std::string out(4000, 'x');
  std::memcpy(at(kBuffer), out.data(), out.size());
  ASSERT_EQ(raw(1, 1, kBuffer, out.size()), 4000);
  ASSERT_EQ(rt->pending_count, 1u);
  // stdout over its capacity ends the program from inside the call.
  for (int i = 0; i < 300 && !rt->finished; ++i) raw(1, 1, kBuffer, out.size());
  ASSERT_TRUE(rt->finished);
  EXPECT_EQ(rt->pending_count, 0u);
  EXPECT_EQ(mailbox()->outcome, static_cast<uint64_t>(OUTCOME_OUTPUT_LIMIT));
  EXPECT_EQ(stdout_text(), std::string(MAILBOX_STDOUT_CAPACITY, 'x'));
}

}  // namespace
}  // namespace thaw_guest_test
