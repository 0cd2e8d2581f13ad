// RunControl with plain threads standing in for vCPUs: pause, resume and
// stop must reach every thread and report the first stop reason.
#include "vmm/run_control.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace thaw::vmm {
namespace {

using namespace std::chrono_literals;

// A fake vCPU loop: "runs" (spins) while running, parks otherwise.
class FakeVcpus {
 public:
  FakeVcpus(RunControl& control, size_t count) : control_(control), iterations_(count) {
    for (size_t i = 0; i < count; ++i) {
      threads_.emplace_back([this, i] {
        while (true) {
          if (!control_.running()) {
            if (!control_.park(i)) break;
            continue;
          }
          iterations_[i].fetch_add(1);
          std::this_thread::yield();
        }
        control_.vcpu_exited(i);
      });
    }
  }
  ~FakeVcpus() {
    control_.request_stop(StopReason::kHostRequest);
    for (auto& t : threads_) t.join();
  }
  uint64_t iterations(size_t i) const { return iterations_[i].load(); }

 private:
  RunControl& control_;
  std::vector<std::atomic<uint64_t>> iterations_;
  std::vector<std::thread> threads_;
};

TEST(RunControl, PauseParksEveryThreadAndResumeRunsThemAgain) {
  RunControl control(3);
  std::atomic<int> kicks{0};
  control.set_kick([&](size_t) { kicks.fetch_add(1); });
  FakeVcpus vcpus(control, 3);
  control.request_pause();
  ASSERT_TRUE(control.wait_paused(5s));
  EXPECT_EQ(control.state(), RunState::kPaused);
  EXPECT_EQ(kicks.load(), 3);
  uint64_t before = vcpus.iterations(0) + vcpus.iterations(1) + vcpus.iterations(2);
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(vcpus.iterations(0) + vcpus.iterations(1) + vcpus.iterations(2), before) << "a paused thread ran";
  control.resume();
  EXPECT_EQ(control.state(), RunState::kRunning);
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while (vcpus.iterations(0) + vcpus.iterations(1) + vcpus.iterations(2) <= before) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "threads did not run after resume";
    std::this_thread::sleep_for(1ms);
  }
}

TEST(RunControl, StopReachesPausedThreadsAndKeepsTheFirstReason) {
  RunControl control(2);
  FakeVcpus vcpus(control, 2);
  control.request_pause();
  ASSERT_TRUE(control.wait_paused(5s));
  control.request_stop(StopReason::kBootComplete, "first");
  control.request_stop(StopReason::kHostRequest, "second");
  ASSERT_TRUE(control.wait_stopped(5s));
  EXPECT_EQ(control.stop_reason(), StopReason::kBootComplete);
  EXPECT_EQ(control.stop_detail(), "first");
}

TEST(RunControl, WaitTimesOutWhileRunning) {
  RunControl control(1);
  FakeVcpus vcpus(control, 1);
  EXPECT_FALSE(control.wait_paused_or_stopped(10ms));
  EXPECT_EQ(control.state(), RunState::kRunning);
}

TEST(RunControl, AThreadLeavingOnItsOwnStopsTheVm) {
  RunControl control(2);
  std::thread failing([&] { control.vcpu_exited(0); });
  failing.join();
  EXPECT_EQ(control.state(), RunState::kStopping);
  EXPECT_EQ(control.stop_reason(), StopReason::kHostError);
  std::thread other([&] { control.vcpu_exited(1); });
  other.join();
  EXPECT_TRUE(control.wait_stopped(1s));
}

TEST(StopReason, FailuresAreToldApartFromCleanEnds) {
  EXPECT_TRUE(stop_reason_is_failure(StopReason::kGuestFailure));
  EXPECT_TRUE(stop_reason_is_failure(StopReason::kTripleFault));
  EXPECT_TRUE(stop_reason_is_failure(StopReason::kTimeout));
  EXPECT_FALSE(stop_reason_is_failure(StopReason::kBootComplete));
  EXPECT_FALSE(stop_reason_is_failure(StopReason::kGuestExit));
  EXPECT_FALSE(stop_reason_is_failure(StopReason::kGuestReset));
  EXPECT_FALSE(stop_reason_is_failure(StopReason::kGuestPowerOff));
}

}  // namespace
}  // namespace thaw::vmm
