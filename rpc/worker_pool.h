// Runs blocking pool calls off the kj event loop. PoolManager calls block
// (acquire waits for a refill, create_template cold-boots, invoke waits on
// the guest), so the RPC server hands each one to a worker thread and gets a
// kj::Promise back that resolves on the event loop's own thread, through a
// cross-thread fulfiller. Threads start on demand up to a cap; jobs past the
// cap queue.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include <kj/async.h>
#include <kj/function.h>

#include "rpc/error_mapping.h"

namespace thaw::rpc {

class WorkerPool {
 public:
  explicit WorkerPool(size_t max_threads);
  ~WorkerPool();  // runs every queued job, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `job` for a worker. Thread-safe. Jobs must not throw.
  void post(kj::Function<void()> job);

  // Runs `fn` on a worker. Call on a thread with a kj event loop; the promise
  // resolves there. If the promise is dropped first, `fn` still runs to the
  // end and its result is destroyed on the worker (so an RAII result, such as
  // a lease, cleans up after itself).
  template <typename Fn>
  kj::Promise<std::invoke_result_t<Fn&>> run(Fn fn) {
    using T = std::invoke_result_t<Fn&>;
    auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
    post([fulfiller = kj::mv(paf.fulfiller), fn = kj::mv(fn)]() mutable {
      try {
        if constexpr (std::is_void_v<T>) {
          fn();
          fulfiller->fulfill();
        } else {
          T value = fn();
          fulfiller->fulfill(kj::mv(value));
        }
      } catch (...) {
        fulfiller->reject(exception_to_kj(std::current_exception()));
      }
    });
    return kj::mv(paf.promise);
  }

  // Stops taking jobs, runs what is queued and joins. Idempotent.
  void shutdown();

  size_t threads() const;

 private:
  void worker_loop();

  const size_t max_threads_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<kj::Function<void()>> queue_;
  std::vector<std::thread> threads_;
  size_t idle_ = 0;
  bool stopping_ = false;
};

}  // namespace thaw::rpc
