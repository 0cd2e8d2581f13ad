// devices/virtio/vsock_muxer.h: the loop itself on eventfds (one-shot
// watching, rearm, remove waiting out a running call), then devices that
// share one muxer as a pool's clones do: one thread for all of them, and
// neither a paused nor a destroyed device holds up its neighbour.
#include "devices/virtio/vsock_muxer.h"

#include <dirent.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include "base/eventfd.h"
#include "tests/devices/vsock_test_fixture.h"

namespace thaw::devices::test {
namespace {

using namespace std::chrono_literals;

// Polls `done` for up to 5 s.
template <typename Fn>
bool eventually(Fn done) {
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

size_t threads_in_this_process() {
  size_t n = 0;
  if (DIR* d = ::opendir("/proc/self/task")) {
    while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
    ::closedir(d);
  }
  return n;
}

TEST(VsockMuxer, CallsAHandlerWhenItsFdIsReadyAndAgainOnlyOnceArmed) {
  auto muxer = VsockMuxer::start();
  UniqueFd ready = make_eventfd("test");
  std::atomic<int> calls{0};
  std::atomic<bool> watch_again{false};
  const uint64_t id = muxer->add(ready.get(), [&] {
    ++calls;
    return watch_again.load();
  });
  EXPECT_EQ(muxer->size(), 1u);
  signal_eventfd(ready.get());
  ASSERT_TRUE(eventually([&] { return calls == 1; }));
  // Still readable (nobody drained it), but the handler said not again.
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls, 1);
  watch_again = true;
  muxer->rearm(id);
  ASSERT_TRUE(eventually([&] { return calls >= 3; })) << "a handler that says 'again' is called while ready";
  drain_eventfd(ready.get());
  muxer->remove(id);
  const int after_remove = calls;
  signal_eventfd(ready.get());
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls, after_remove) << "called after remove()";
  EXPECT_EQ(muxer->size(), 0u);
}

TEST(VsockMuxer, RemoveWaitsOutARunningHandlerAndAHandlerMayRemoveItself) {
  auto muxer = VsockMuxer::start();
  UniqueFd slow_fd = make_eventfd("slow");
  std::atomic<bool> started{false};
  std::atomic<bool> finished{false};
  const uint64_t slow = muxer->add(slow_fd.get(), [&] {
    started = true;
    std::this_thread::sleep_for(100ms);
    finished = true;
    return false;
  });
  signal_eventfd(slow_fd.get());
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  muxer->remove(slow);
  EXPECT_TRUE(finished) << "remove() returned while the handler still ran";

  UniqueFd self_fd = make_eventfd("self");
  std::atomic<int> calls{0};
  uint64_t self = 0;
  self = muxer->add(self_fd.get(), [&] {
    ++calls;
    muxer->remove(self);
    return true;
  });
  signal_eventfd(self_fd.get());
  ASSERT_TRUE(eventually([&] { return muxer->size() == 0; }));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(calls, 1);
}

TEST(VsockSharedMuxer, DevicesOnOneMuxerServeTheirGuestsWithoutAThreadEach) {
  auto muxer = VsockMuxer::start();
  const size_t threads_before = threads_in_this_process();
  VsockRig a(muxer);
  VsockRig b(muxer);
  EXPECT_EQ(threads_in_this_process(), threads_before) << "a device on a shared muxer started a thread";
  EXPECT_EQ(muxer->size(), 2u);
  a.bring_up();
  b.bring_up();
  auto [fd_a, port_a] = a.establish(5000);
  auto [fd_b, port_b] = b.establish(6000);
  ASSERT_EQ(::send(fd_a, "to a", 4, 0), 4);
  ASSERT_EQ(::send(fd_b, "to b", 4, 0), 4);
  EXPECT_EQ(a.receive_one(kVsockOpRw).data, "to a");
  EXPECT_EQ(b.receive_one(kVsockOpRw).data, "to b");
  b.send(b.guest_header(6000, port_b, kVsockOpRw), "from b");
  EXPECT_EQ(read_some(fd_b, 6), "from b");

  // One device's own muxer is a thread of its own, for comparison.
  const size_t with_shared = threads_in_this_process();
  VsockRig alone;
  EXPECT_EQ(threads_in_this_process(), with_shared + 1);
}

TEST(VsockSharedMuxer, APausedDeviceDoesNotHoldUpItsNeighbour) {
  auto muxer = VsockMuxer::start();
  VsockRig paused(muxer);
  VsockRig neighbour(muxer);
  paused.bring_up();
  neighbour.bring_up();
  paused.device->pause_processing();
  // The paused device's guest posts a packet and its host client knocks;
  // both stay ready on its fds, which must not stall or spin the loop.
  uint64_t buf = paused.alloc(44);
  paused.mem->put(buf, paused.guest_header(1, 2, kVsockOpRw));
  const uint16_t used_before = paused.driver->used_idx(1);
  paused.driver->add_chain(1, {{buf, 44, false}});
  paused.driver->notify(1);
  auto [fd, port] = neighbour.establish(7000);
  ASSERT_EQ(::send(fd, "still here", 10, 0), 10);
  EXPECT_EQ(neighbour.receive_one(kVsockOpRw).data, "still here");
  EXPECT_EQ(paused.driver->used_idx(1), used_before) << "a paused device touched its queue";
  paused.device->resume_processing();
  EXPECT_EQ(paused.driver->wait_used(1).size(), 1u);
}

TEST(VsockSharedMuxer, ADestroyedDeviceLeavesItsNeighbourServing) {
  auto muxer = VsockMuxer::start();
  auto going = std::make_unique<VsockRig>(muxer);
  VsockRig staying(muxer);
  going->bring_up();
  staying.bring_up();
  auto [fd_going, port_going] = going->establish(5000);
  auto [fd, port] = staying.establish(5000);
  // Traffic for the device that goes, in flight as it goes.
  ASSERT_EQ(::send(fd_going, "bye", 3, 0), 3);
  going->fds.clear();  // the client is this test's to close, after the device goes
  going.reset();
  EXPECT_EQ(muxer->size(), 1u);
  EXPECT_TRUE(sees_eof(fd_going)) << "the destroyed device's client was not closed";
  ::close(fd_going);
  ASSERT_EQ(::send(fd, "hello", 5, 0), 5);
  EXPECT_EQ(staying.receive_one(kVsockOpRw).data, "hello");
  staying.send(staying.guest_header(5000, port, kVsockOpRw), "world");
  EXPECT_EQ(read_some(fd, 5), "world");
}

}  // namespace
}  // namespace thaw::devices::test
