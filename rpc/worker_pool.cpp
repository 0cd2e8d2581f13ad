#include "rpc/worker_pool.h"

#include <spdlog/spdlog.h>

namespace thaw::rpc {

WorkerPool::WorkerPool(size_t max_threads) : max_threads_(max_threads == 0 ? 1 : max_threads) {}

WorkerPool::~WorkerPool() { shutdown(); }

void WorkerPool::post(kj::Function<void()> job) {
  std::unique_lock lock(mutex_);
  if (stopping_) {
    // Only reachable during shutdown: run it here rather than lose it (a
    // lease release must not be dropped).
    lock.unlock();
    job();
    return;
  }
  queue_.push_back(kj::mv(job));
  // Idle workers each take one queued job; start another thread when the
  // queue outgrows them, so a job never waits behind a long acquire.
  if (queue_.size() > idle_ && threads_.size() < max_threads_) {
    threads_.emplace_back([this] { worker_loop(); });
  } else {
    wake_.notify_one();
  }
}

void WorkerPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    threads.swap(threads_);
  }
  wake_.notify_all();
  for (auto& t : threads) t.join();
}

size_t WorkerPool::threads() const {
  std::lock_guard lock(mutex_);
  return threads_.size();
}

void WorkerPool::worker_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      ++idle_;
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      --idle_;
      continue;
    }
    {
      auto job = kj::mv(queue_.front());
      queue_.pop_front();
      lock.unlock();
      try {
        job();
      } catch (const std::exception& e) {
        spdlog::error("rpc worker: a job threw: {}", e.what());
      } catch (const kj::Exception& e) {
        spdlog::error("rpc worker: a job threw: {}", e.getDescription().cStr());
      }
    }  // the job's captures (a lease, a fulfiller) die here, outside the lock
    lock.lock();
  }
}

}  // namespace thaw::rpc
