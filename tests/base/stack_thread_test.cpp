// ThreadStack and StackThread with real threads and real mappings: the body
// runs on the stack it was given, the guard page faults (both kinds), and,
// where the kernel has guard regions, many threads' stacks cost far fewer
// VMAs than glibc's two a thread.
#include "base/stack_thread.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "base/errors.h"

namespace thaw {
namespace {

size_t vma_count() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

bool inside(const ThreadStack& stack, const void* p) {
  auto* begin = static_cast<const char*>(stack.usable_begin());
  return static_cast<const char*>(p) >= begin && static_cast<const char*>(p) < begin + stack.usable_bytes();
}

TEST(ThreadStack, RoundsUpToPagesAndTheMinimum) {
  ThreadStack small(1);
  EXPECT_EQ(small.usable_bytes(), ThreadStack::kMinUsableBytes);
  ThreadStack odd(ThreadStack::kMinUsableBytes + 1);
  EXPECT_EQ(odd.usable_bytes(), ThreadStack::kMinUsableBytes + 4096);
  EXPECT_EQ(static_cast<char*>(odd.usable_begin()) - static_cast<char*>(odd.guard_page()),
            static_cast<ptrdiff_t>(ThreadStack::kGuardBytes));
}

TEST(ThreadStack, MoveLeavesTheSourceEmpty) {
  ThreadStack a(ThreadStack::kMinUsableBytes);
  void* begin = a.usable_begin();
  ThreadStack b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(a.usable_bytes(), 0u);
  EXPECT_EQ(b.usable_begin(), begin);
  a = std::move(b);
  EXPECT_TRUE(a.valid());
  EXPECT_FALSE(b.valid());
}

void touch(void* p) { *static_cast<volatile char*>(p) = 1; }

TEST(ThreadStackDeathTest, TheGuardPageFaults) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ThreadStack region(ThreadStack::kMinUsableBytes, StackGuard::kGuardRegion);
  touch(region.usable_begin());  // the lowest usable byte is fine
  EXPECT_DEATH(touch(region.guard_page()), "");
  ThreadStack mapping(ThreadStack::kMinUsableBytes, StackGuard::kProtectedMapping);
  EXPECT_EQ(mapping.guard(), StackGuard::kProtectedMapping);
  EXPECT_DEATH(touch(mapping.guard_page()), "");
}

TEST(StackThread, RunsItsBodyOnItsOwnStack) {
  std::atomic<const void*> local_address{nullptr};
  StackThread thread([&] {
    int local = 0;
    local_address = &local;
  }, "test thread", 256 * 1024);
  ASSERT_TRUE(thread.joinable());
  thread.join();
  EXPECT_FALSE(thread.joinable());
  EXPECT_TRUE(inside(thread.stack(), local_address.load()));
  EXPECT_GE(thread.stack().usable_bytes(), 256u * 1024);
}

TEST(StackThread, MoveKeepsTheThreadAndDestructionJoins) {
  std::atomic<int> ran{0};
  {
    StackThread a([&] { ++ran; }, "first");
    StackThread b(std::move(a));
    EXPECT_FALSE(a.joinable());
    EXPECT_TRUE(b.joinable());
    b = StackThread([&] { ++ran; }, "second");  // joins the first
    EXPECT_TRUE(b.joinable());
  }
  EXPECT_EQ(ran.load(), 2);
}

TEST(StackThread, AThreadCanSignalItsNativeHandle) {
  std::mutex mutex;
  std::condition_variable cv;
  bool go = false;
  std::atomic<pthread_t> self{};
  StackThread thread([&] {
    self = ::pthread_self();
    std::unique_lock lock(mutex);
    cv.wait(lock, [&] { return go; });
  }, "waiter");
  while (self.load() == pthread_t{}) std::this_thread::yield();
  EXPECT_TRUE(::pthread_equal(self.load(), thread.native_handle()));
  {
    std::lock_guard lock(mutex);
    go = true;
  }
  cv.notify_all();
  thread.join();
}

// 64 live threads: glibc's stacks would add 128 VMAs (stack + guard each).
TEST(StackThread, SixtyFourThreadsCostFewVmasWithGuardRegions) {
  if (!guard_regions_supported()) GTEST_SKIP() << "this kernel has no MADV_GUARD_INSTALL (Linux 6.13)";
  constexpr int kThreads = 64;
  std::mutex mutex;
  std::condition_variable cv;
  bool go = false;
  std::atomic<int> started{0};
  const size_t before = vma_count();
  std::vector<StackThread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      ++started;
      std::unique_lock lock(mutex);
      cv.wait(lock, [&] { return go; });
    }, "vma test");
  }
  while (started.load() < kThreads) std::this_thread::yield();
  const size_t during = vma_count();
  {
    std::lock_guard lock(mutex);
    go = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  EXPECT_EQ(threads.front().stack().guard(), StackGuard::kGuardRegion);
  // Neighbouring stacks merge; allow for the odd gap another mapping left.
  EXPECT_LT(during - before, static_cast<size_t>(kThreads / 4)) << before << " VMAs before, " << during << " with "
                                                                 << kThreads << " threads";
}

}  // namespace
}  // namespace thaw
