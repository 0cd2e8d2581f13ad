// CloneDestroyer without KVM: a clone whose teardown is slow stands in for
// a VM's (its console callback holds an object that sleeps as it goes, and
// goes with the clone's last reference, which the destroyer drops). What is
// checked: how many teardowns overlap, that drain() waits for every one, and
// that a destroyer with clones still queued finishes them before it goes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

#include "pool/clone.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;

struct TeardownProbe {
  std::atomic<int> in_flight{0};
  std::atomic<int> most_at_once{0};
  std::atomic<int> finished{0};
};

// Sleeps in its destructor, counting how many do so at once.
class SlowTeardown {
 public:
  explicit SlowTeardown(TeardownProbe& probe) : probe_(probe) {}
  ~SlowTeardown() {
    int now = probe_.in_flight.fetch_add(1) + 1;
    int seen = probe_.most_at_once.load();
    while (now > seen && !probe_.most_at_once.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(40ms);
    probe_.in_flight.fetch_sub(1);
    probe_.finished.fetch_add(1);
  }
  SlowTeardown(const SlowTeardown&) = delete;
  SlowTeardown& operator=(const SlowTeardown&) = delete;

 private:
  TeardownProbe& probe_;
};

std::shared_ptr<Clone> slow_clone(TeardownProbe& probe, uint64_t serial) {
  auto clone = std::make_shared<Clone>();
  clone->serial = serial;
  clone->options.console = [teardown = std::make_shared<SlowTeardown>(probe)](std::span<const char>) {};
  return clone;
}

TEST(CloneDestroyer, TeardownsOverlapUpToItsThreads) {
  TeardownProbe probe;
  CloneDestroyer destroyer(4);
  for (uint64_t i = 0; i < 12; ++i) destroyer.destroy(slow_clone(probe, i));
  destroyer.drain();
  EXPECT_EQ(probe.finished.load(), 12) << "drain() returned before every teardown ended";
  EXPECT_EQ(destroyer.destroyed(), 12u);
  EXPECT_GE(probe.most_at_once.load(), 2) << "no two teardowns overlapped";
  EXPECT_LE(probe.most_at_once.load(), 4);
}

TEST(CloneDestroyer, OneThreadTearsDownOneAtATime) {
  TeardownProbe probe;
  CloneDestroyer destroyer(1);
  for (uint64_t i = 0; i < 4; ++i) destroyer.destroy(slow_clone(probe, i));
  destroyer.drain();
  EXPECT_EQ(probe.finished.load(), 4);
  EXPECT_EQ(probe.most_at_once.load(), 1);
}

TEST(CloneDestroyer, ItsDestructorFinishesWhatIsQueued) {
  TeardownProbe probe;
  {
    CloneDestroyer destroyer(2);
    for (uint64_t i = 0; i < 6; ++i) destroyer.destroy(slow_clone(probe, i));
  }
  EXPECT_EQ(probe.finished.load(), 6);
  EXPECT_EQ(probe.in_flight.load(), 0);
}

TEST(CloneDestroyer, ARetiredCloneIsMarkedBeforeItsTeardown) {
  TeardownProbe probe;
  CloneDestroyer destroyer(1);
  auto clone = slow_clone(probe, 1);
  Clone* seen = clone.get();
  auto keep = clone;  // a reference held elsewhere (an invoke in flight) keeps it alive
  destroyer.destroy(std::move(clone));
  EXPECT_TRUE(seen->retired());
  destroyer.drain();
  EXPECT_EQ(probe.finished.load(), 0) << "torn down while a reference was still held";
  keep.reset();
  EXPECT_EQ(probe.finished.load(), 1);
}

}  // namespace
}  // namespace thaw::pool
