// RefillWorker's threads without KVM: the restore hook stands in for a
// restore (it sleeps and counts how many run at once), so what is checked
// is the worker's scheduling: how many restores overlap, that a pool fills
// to what it wants and no further, and that a wake() after an idle spell
// starts restores again.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "pool/refill_worker.h"

namespace thaw::pool {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Counts the restores in flight; each takes `restore_time`.
struct RestoreProbe {
  std::chrono::milliseconds restore_time{30};
  std::atomic<int> in_flight{0};
  std::atomic<int> most_at_once{0};
  std::atomic<int> restores{0};

  std::shared_ptr<Clone> restore(uint64_t serial) {
    int now = in_flight.fetch_add(1) + 1;
    int seen = most_at_once.load();
    while (now > seen && !most_at_once.compare_exchange_weak(seen, now)) {
    }
    std::this_thread::sleep_for(restore_time);
    in_flight.fetch_sub(1);
    restores.fetch_add(1);
    auto clone = std::make_shared<Clone>();
    clone->serial = serial;
    return clone;
  }
};

std::shared_ptr<WarmPool> make_pool(uint32_t warm, const std::function<void()>& wake) {
  TemplateRecord record;
  record.spec.name = "probe";
  record.policy.min_warm = warm;
  record.policy.max_warm = warm;
  record.policy.memory_budget_mib = 1 << 20;  // never the limit here
  return std::make_shared<WarmPool>(record, "/nonexistent-thaw-test-dir", snapshot::LoadedSnapshot{}, WarmPoolTuning{},
                                    wake);
}

struct Harness {
  RestoreProbe probe;
  std::atomic<uint64_t> next_serial{1};
  std::shared_ptr<WarmPool> pool;
  std::unique_ptr<RefillWorker> worker;

  Harness(uint32_t warm, unsigned refill_threads) {
    // The pool calls wake_refill when it wants clones; the worker exists by then.
    pool = make_pool(warm, [this] {
      if (worker) worker->wake();
    });
    RefillWorker::Hooks hooks;
    hooks.pools = [this] { return std::vector<std::shared_ptr<WarmPool>>{pool}; };
    hooks.restore = [this](WarmPool&) { return probe.restore(next_serial.fetch_add(1)); };
    hooks.destroy = [this](WarmPool* p, std::shared_ptr<Clone> clone) {
      if (p && clone) p->forget(*clone);
    };
    // No autoscaler tick within a test: only wake() starts restores.
    worker = std::make_unique<RefillWorker>(hooks, 60s, RefillWorker::Threads{refill_threads, 1}, 1000);
  }
  ~Harness() { worker->stop(); }

  uint32_t warm() const { return pool->stats().warm; }

  bool wait_warm(uint32_t n, std::chrono::milliseconds timeout) const {
    auto deadline = Clock::now() + timeout;
    while (warm() < n) {
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }
};

TEST(RefillWorker, OneThreadRestoresOneCloneAtATime) {
  Harness h(6, 1);
  ASSERT_TRUE(h.wait_warm(6, 20s)) << "warm: " << h.warm();
  EXPECT_EQ(h.probe.most_at_once.load(), 1);
}

TEST(RefillWorker, SeveralThreadsRestoreInParallelAndStopAtTheTarget) {
  Harness h(12, 3);
  ASSERT_TRUE(h.wait_warm(12, 20s)) << "warm: " << h.warm();
  // Twelve 30-ms restores on three threads: they overlap unless the
  // threads wait on each other.
  EXPECT_GE(h.probe.most_at_once.load(), 2);
  EXPECT_LE(h.probe.most_at_once.load(), 3);
  // No thread restores past what the pool wants.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(h.probe.restores.load(), 12);
  EXPECT_EQ(h.warm(), 12u);
}

TEST(RefillWorker, ClonesTakenAfterAnIdleSpellAreReplaced) {
  Harness h(4, 2);
  ASSERT_TRUE(h.wait_warm(4, 20s)) << "warm: " << h.warm();
  std::this_thread::sleep_for(100ms);  // every refill thread is asleep now
  std::vector<std::shared_ptr<Clone>> taken;
  for (int i = 0; i < 3; ++i) {
    auto clone = h.pool->try_take();
    ASSERT_NE(clone, nullptr);
    h.pool->lease_ended();  // gone: the pool wants a new clone in its place
    taken.push_back(clone);
  }
  ASSERT_TRUE(h.wait_warm(4, 20s)) << "warm: " << h.warm();
  EXPECT_EQ(h.probe.restores.load(), 7);
  for (auto& clone : taken) h.pool->forget(*clone);
}

TEST(RefillWorker, AutomaticThreadCountFollowsTheCpusThisProcessMayUse) {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  ASSERT_EQ(::sched_getaffinity(0, sizeof cpus, &cpus), 0);
  unsigned expected = std::clamp(static_cast<unsigned>(CPU_COUNT(&cpus)), 1u, kMaxAutomaticRefillThreads);
  EXPECT_EQ(automatic_refill_threads(), expected);
  // Pinned to one CPU (in a thread of its own, whose mask is its own), one thread.
  std::thread pinned([] {
    cpu_set_t one;
    CPU_ZERO(&one);
    cpu_set_t all;
    CPU_ZERO(&all);
    ASSERT_EQ(::sched_getaffinity(0, sizeof all, &all), 0);
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
      if (CPU_ISSET(cpu, &all)) {
        CPU_SET(cpu, &one);
        break;
      }
    }
    ASSERT_EQ(::sched_setaffinity(0, sizeof one, &one), 0);
    EXPECT_EQ(automatic_refill_threads(), 1u);
  });
  pinned.join();
}

}  // namespace
}  // namespace thaw::pool
