// base/eventfd: the wake-up counters devices, the userfault pager and irqfds
// use. Real eventfds; no /dev/kvm needed.
#include "base/eventfd.h"

#include <fcntl.h>
#include <poll.h>

#include <thread>

#include <gtest/gtest.h>

namespace thaw {
namespace {

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

TEST(Eventfd, IsNonBlockingAndCloseOnExec) {
  auto fd = make_eventfd("the test");
  ASSERT_TRUE(fd.valid());
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFL) & O_NONBLOCK);
  EXPECT_TRUE(::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
  // Draining an unsignalled eventfd returns at once instead of blocking.
  EXPECT_FALSE(drain_eventfd(fd.get()));
  EXPECT_FALSE(readable(fd.get(), 0));
}

TEST(Eventfd, SignalsAddUpAndOneDrainClearsThemAll) {
  auto fd = make_eventfd("the test");
  signal_eventfd(fd.get());
  signal_eventfd(fd.get());
  EXPECT_TRUE(readable(fd.get(), 0));
  EXPECT_TRUE(drain_eventfd(fd.get()));
  EXPECT_FALSE(readable(fd.get(), 0));
  EXPECT_FALSE(drain_eventfd(fd.get()));
}

TEST(Eventfd, WakesAPollerInAnotherThread) {
  auto fd = make_eventfd("the test");
  bool woke = false;
  std::thread poller([&] { woke = readable(fd.get(), 10000); });
  signal_eventfd(fd.get());
  poller.join();
  EXPECT_TRUE(woke);
  EXPECT_TRUE(drain_eventfd(fd.get()));
}

TEST(Eventfd, AnInvalidFdIsIgnoredBySignalAndFalseForDrain) {
  signal_eventfd(-1);  // no crash, nothing to wake
  EXPECT_FALSE(drain_eventfd(-1));
}

}  // namespace
}  // namespace thaw
