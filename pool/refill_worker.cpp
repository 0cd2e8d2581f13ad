#include "pool/refill_worker.h"

#include <sched.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/background_thread.h"
#include "pool/memory_usage.h"

namespace thaw::pool {

namespace {
using Clock = std::chrono::steady_clock;
}

unsigned automatic_refill_threads() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  if (::sched_getaffinity(0, sizeof cpus, &cpus) != 0) return 1;
  return std::clamp(static_cast<unsigned>(CPU_COUNT(&cpus)), 1u, kMaxAutomaticRefillThreads);
}

unsigned refill_threads_for(unsigned configured) {
  return configured != 0 ? configured : automatic_refill_threads();
}

RefillWorker::RefillWorker(Hooks hooks, std::chrono::milliseconds autoscale_period, Threads threads,
                           unsigned memory_sample_every)
    : hooks_(std::move(hooks)),
      period_(std::max(autoscale_period, std::chrono::milliseconds(10))),
      memory_period_(period_ * std::max(1u, memory_sample_every)) {
  ticker_ = std::thread([this] { ticker_main(); });
  for (unsigned i = 0; i < std::max(1u, threads.refill); ++i) refill_threads_.emplace_back([this] { refill_main(); });
  for (unsigned i = 0; i < std::max(1u, threads.reset); ++i) reset_threads_.emplace_back([this] { reset_main(); });
}

RefillWorker::~RefillWorker() {
  for (auto& clone : stop()) hooks_.destroy(nullptr, std::move(clone));
}

void RefillWorker::wake() {
  {
    std::lock_guard lock(mutex_);
    ++wake_count_;
  }
  wake_.notify_all();
}

void RefillWorker::recycle(std::shared_ptr<WarmPool> pool, std::shared_ptr<Clone> clone) {
  {
    std::lock_guard lock(mutex_);
    recycle_.emplace_back(std::move(pool), std::move(clone));
  }
  recycled_.notify_one();
}

std::vector<std::shared_ptr<Clone>> RefillWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  tick_.notify_all();
  wake_.notify_all();
  recycled_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  for (auto& t : refill_threads_) {
    if (t.joinable()) t.join();
  }
  for (auto& t : reset_threads_) {
    if (t.joinable()) t.join();
  }
  std::vector<std::shared_ptr<Clone>> left;
  std::lock_guard lock(mutex_);
  for (auto& [pool, clone] : recycle_) left.push_back(std::move(clone));
  recycle_.clear();
  return left;
}

void RefillWorker::ticker_main() {
  make_this_thread_background();  // autoscaling must not preempt the RPC loop
  auto next_tick = Clock::now() + period_;
  // The first tick samples, so stats show memory soon after start-up.
  auto next_sample = Clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = Clock::now();
    if (now < next_tick) {
      tick_.wait_until(lock, next_tick);
      continue;
    }
    lock.unlock();
    autoscale_all(std::chrono::duration<double>(period_ + (now - next_tick)).count());
    if (now >= next_sample) {
      sample_memory();
      next_sample = now + memory_period_;
    }
    lock.lock();
    next_tick = now + period_;
    ++wake_count_;  // also retries pools that were backing off
    wake_.notify_all();
  }
}

void RefillWorker::refill_main() {
  make_this_thread_background();  // restores must not preempt the RPC loop
  std::unique_lock lock(mutex_);
  uint64_t looked_at = 0;  // the wake_count_ this thread last acted on
  bool restored = false;   // its last look restored a clone: maybe more to do
  while (!stopping_) {
    if (!restored && looked_at == wake_count_) {
      wake_.wait(lock);
      continue;
    }
    looked_at = wake_count_;
    lock.unlock();
    restored = refill_one();
    lock.lock();
  }
}

void RefillWorker::reset_main() {
  make_this_thread_background();  // resets must not preempt the RPC loop
  std::unique_lock lock(mutex_);
  for (;;) {
    recycled_.wait(lock, [&] { return stopping_ || !recycle_.empty(); });
    if (stopping_) return;  // stop() hands what is left to the caller
    auto [pool, clone] = std::move(recycle_.front());
    recycle_.pop_front();
    lock.unlock();
    reset_one(pool, std::move(clone));
    lock.lock();
  }
}

void RefillWorker::reset_one(const std::shared_ptr<WarmPool>& pool, std::shared_ptr<Clone> clone) {
  if (!pool->begin_reset()) {
    hooks_.destroy(pool.get(), std::move(clone));
    return;
  }
  auto start = Clock::now();
  try {
    reset_clone(*clone, pool->snapshot());
  } catch (const GuestGone& e) {
    spdlog::info("pool '{}': clone {} is destroyed, not reused: {}", pool->name(), clone->serial, e.what());
    pool->count_reset_failure();
    hooks_.destroy(pool.get(), std::move(clone));
    return;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (auto refused = pool->put_back(std::move(clone), seconds)) hooks_.destroy(pool.get(), std::move(refused));
}

bool RefillWorker::refill_one() {
  auto pools = hooks_.pools();
  size_t first = 0;
  {
    std::lock_guard lock(mutex_);
    first = next_pool_;
  }
  for (size_t i = 0; i < pools.size(); ++i) {
    auto& pool = pools[(first + i) % pools.size()];
    if (!pool->reserve_restore()) continue;
    {
      std::lock_guard lock(mutex_);
      next_pool_ = (first + i + 1) % pools.size();
    }
    auto start = Clock::now();
    std::shared_ptr<Clone> clone;
    try {
      clone = hooks_.restore(*pool);
    } catch (const std::exception& e) {
      if (pool->deleted()) {
        spdlog::info("pool '{}': deleted while a clone was restored ({})", pool->name(), e.what());
      } else {
        spdlog::error("pool '{}': restoring a clone failed: {}", pool->name(), e.what());
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (auto refused = pool->finish_restore(std::move(clone), seconds)) hooks_.destroy(pool.get(), std::move(refused));
    return true;
  }
  return false;
}

void RefillWorker::autoscale_all(double period_seconds) {
  for (auto& pool : hooks_.pools()) {
    for (auto& surplus : pool->autoscale_tick(period_seconds)) hooks_.destroy(pool.get(), std::move(surplus));
    // Closed here, a few a tick: an empty VM's teardown waits for KVM's
    // grace periods, and a lowered max_warm may leave hundreds over.
    pool->surplus_shells(kShellsClosedPerTick).clear();
  }
}

void RefillWorker::sample_memory() {
  auto pools = hooks_.pools();
  std::vector<HostRange> ranges;
  std::vector<size_t> counts;
  for (auto& pool : pools) {
    auto r = pool->clone_ranges();
    counts.push_back(r.size());
    ranges.insert(ranges.end(), r.begin(), r.end());
  }
  if (ranges.empty()) {
    for (auto& pool : pools) pool->set_measured_private({});
    return;
  }
  auto sample = measure_private_memory(ranges);
  if (!sample) return;
  const auto& bytes = sample->bytes;
  size_t at = 0;
  for (size_t i = 0; i < pools.size(); ++i) {
    pools[i]->set_measured_private({bytes.begin() + static_cast<long>(at), bytes.begin() + static_cast<long>(at + counts[i])});
    at += counts[i];
  }
}

}  // namespace thaw::pool
