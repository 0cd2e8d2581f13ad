// base/fd_io.h on real files and pipes: a full read, a file that ends
// early, a read that fails, a write that fails, and EINTR in between.
#include "base/fd_io.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

#include "base/unique_fd.h"
#include "tests/temp_dir.h"

namespace thaw {
namespace {

std::vector<uint8_t> pattern(size_t n) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(i * 7 + 3);
  return bytes;
}

TEST(FdIo, WritesThenReadsAWholeFile) {
  testing::TempDir dir("thaw-fd-io");
  const std::string path = dir.path() + "/f";
  const auto bytes = pattern(300000);
  {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd);
    auto w = write_all(fd.get(), bytes);
    EXPECT_EQ(w.error, 0);
    EXPECT_EQ(w.bytes, bytes.size());
  }
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(fd);
  std::vector<uint8_t> back(bytes.size());
  auto r = read_until_full(fd.get(), back);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.bytes, bytes.size());
  EXPECT_EQ(back, bytes);
}

TEST(FdIo, AFileThatEndsEarlyIsAShortCountWithoutAnError) {
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd reader(p[0]), writer(p[1]);
  const auto bytes = pattern(1000);
  // Two writes with a pause between: the reader must loop over both.
  std::thread feed([&] {
    ASSERT_EQ(::write(writer.get(), bytes.data(), 400), 400);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_EQ(::write(writer.get(), bytes.data() + 400, 600), 600);
    writer.reset();
  });
  std::vector<uint8_t> back(4096);
  auto r = read_until_full(reader.get(), back);
  feed.join();
  EXPECT_EQ(r.error, 0);
  ASSERT_EQ(r.bytes, 1000u);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), back.begin()));
}

TEST(FdIo, FailedCallsReportTheirErrno) {
  std::vector<uint8_t> buffer(16);
  UniqueFd write_only(::open("/dev/null", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(write_only);
  auto r = read_until_full(write_only.get(), buffer);
  EXPECT_EQ(r.error, EBADF);
  EXPECT_EQ(r.bytes, 0u);
  UniqueFd read_only(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
  auto w = write_all(read_only.get(), buffer);
  EXPECT_EQ(w.error, EBADF);
  // A full device: the write fails with ENOSPC.
  UniqueFd full(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  if (full) {
    auto f = write_all(full.get(), buffer);
    EXPECT_EQ(f.error, ENOSPC);
  }
}

TEST(FdIo, ASignalDuringABlockedReadIsRetried) {
  // A handler without SA_RESTART makes the blocked read return EINTR.
  struct sigaction action {};
  action.sa_handler = [](int) {};
  struct sigaction old {};
  ASSERT_EQ(::sigaction(SIGUSR1, &action, &old), 0);
  int p[2];
  ASSERT_EQ(::pipe2(p, O_CLOEXEC), 0);
  UniqueFd reader(p[0]), writer(p[1]);
  const pthread_t self = ::pthread_self();
  std::thread poke([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ::pthread_kill(self, SIGUSR1);
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    ASSERT_EQ(::write(writer.get(), "abcd", 4), 4);
  });
  std::vector<uint8_t> back(4);
  auto r = read_until_full(reader.get(), back);
  poke.join();
  ::sigaction(SIGUSR1, &old, nullptr);
  EXPECT_EQ(r.error, 0);
  EXPECT_EQ(r.bytes, 4u);
  EXPECT_EQ(back[3], 'd');
}

}  // namespace
}  // namespace thaw
