// The pool's background threads. A few reset threads reset released clones
// in place (about a millisecond each, and independent clones reset in
// parallel: one thread alone fell behind a handful of busy clients and
// left the warm pool empty while clones queued for it). A few refill
// threads restore new clones where a pool is below what it wants, round
// robin over the pools, each one restore at a time: a restore is mostly
// CPU work in this process and the kernel, so one thread per core fills a
// growing pool that many times faster. One ticker thread runs the
// autoscaler every period and samples the clones' private memory. Nothing
// here is on the acquire path.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "pool/clone.h"
#include "pool/warm_pool.h"

namespace thaw::pool {

// Refill threads when none are configured: one per CPU this process may
// run on (its affinity mask), at most kMaxAutomaticRefillThreads: past a
// few, parallel restores mostly wait on each other in KVM and the mm.
inline constexpr unsigned kMaxAutomaticRefillThreads = 4;
unsigned automatic_refill_threads();
// `configured`, or automatic_refill_threads() where it is 0 ("automatic").
unsigned refill_threads_for(unsigned configured);

class RefillWorker {
 public:
  struct Hooks {
    // The pools to serve (a copy of the manager's list).
    std::function<std::vector<std::shared_ptr<WarmPool>>()> pools;
    // Restores one clone for `pool` (throws on failure).
    std::function<std::shared_ptr<Clone>(WarmPool& pool)> restore;
    // Tears a clone down in the background; `pool` may be null.
    std::function<void(WarmPool* pool, std::shared_ptr<Clone> clone)> destroy;
  };

  struct Threads {
    unsigned refill = 1;  // restores in parallel (at least 1)
    unsigned reset = 2;   // resets in parallel (at least 1)
  };
  // Private memory is sampled every `memory_sample_every` autoscaler ticks.
  RefillWorker(Hooks hooks, std::chrono::milliseconds autoscale_period, Threads threads,
               unsigned memory_sample_every = 4);
  ~RefillWorker();
  RefillWorker(const RefillWorker&) = delete;
  RefillWorker& operator=(const RefillWorker&) = delete;

  // Some pool may want a clone: look again.
  void wake();
  // A clone came back from a lease: reset it into `pool` or destroy it.
  void recycle(std::shared_ptr<WarmPool> pool, std::shared_ptr<Clone> clone);
  // Stops the thread; clones still queued for a reset are returned (the
  // caller destroys them).
  std::vector<std::shared_ptr<Clone>> stop();

 private:
  static constexpr size_t kShellsClosedPerTick = 16;  // surplus VM shells (WarmPool::surplus_shells)
  void ticker_main();
  void refill_main();
  void reset_main();
  void reset_one(const std::shared_ptr<WarmPool>& pool, std::shared_ptr<Clone> clone);
  bool refill_one();
  void autoscale_all(double period_seconds);
  void sample_memory();

  Hooks hooks_;
  const std::chrono::milliseconds period_;
  const std::chrono::milliseconds memory_period_;
  std::mutex mutex_;
  std::condition_variable tick_;      // the ticker, at stop()
  std::condition_variable wake_;      // the refill threads
  std::condition_variable recycled_;  // the reset threads
  std::deque<std::pair<std::shared_ptr<WarmPool>, std::shared_ptr<Clone>>> recycle_;
  // Bumped by wake() and each tick: a refill thread that has not looked
  // since the last bump looks at every pool again.
  uint64_t wake_count_ = 1;
  bool stopping_ = false;
  size_t next_pool_ = 0;  // round robin, under mutex_
  std::thread ticker_;
  std::vector<std::thread> refill_threads_;
  std::vector<std::thread> reset_threads_;
};

}  // namespace thaw::pool
