// The pool's background threads. A few reset threads reset released clones
// in place (about a millisecond each, and independent clones reset in
// parallel: one thread alone fell behind a handful of busy clients and
// left the warm pool empty while clones queued for it). One refill thread
// restores new clones where a pool is below what it wants, one at a time
// round robin (the host has few cores), runs the autoscaler every period
// and samples the clones' private memory. Nothing here is on the acquire
// path.
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

  // Private memory is sampled every `memory_sample_every` autoscaler ticks.
  RefillWorker(Hooks hooks, std::chrono::milliseconds autoscale_period, unsigned reset_threads = 2,
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
  void main();
  void reset_main();
  void reset_one(const std::shared_ptr<WarmPool>& pool, std::shared_ptr<Clone> clone);
  bool refill_one();
  void autoscale_all(double period_seconds);
  void sample_memory();

  Hooks hooks_;
  const std::chrono::milliseconds period_;
  const std::chrono::milliseconds memory_period_;
  std::mutex mutex_;
  std::condition_variable wake_;      // the refill thread
  std::condition_variable recycled_;  // the reset threads
  std::deque<std::pair<std::shared_ptr<WarmPool>, std::shared_ptr<Clone>>> recycle_;
  bool pending_ = true;
  bool stopping_ = false;
  size_t next_pool_ = 0;  // round robin
  std::thread thread_;
  std::vector<std::thread> reset_threads_;
};

}  // namespace thaw::pool
