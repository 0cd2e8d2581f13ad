// Threads that start life under a seccomp filter without each paying to
// install it.
//
// seccomp(SECCOMP_SET_MODE_FILTER) checks, converts and JIT-compiles the
// program on every call: 75-100 us of CPU a thread on these hosts
// (bench/seccomp_bench.cpp). A restored clone had two filtered threads (its
// vCPU and its vsock muxer), so a pool paid that twice per restore, and a
// one-off restore paid it before the guest's first instruction. A thread
// inherits its creator's filters at clone, sharing the prepared program,
// so a spawner thread applies the filter once and starts every later
// thread of that kind itself. The filter must allow thread creation
// (seccomp_thread_creation_rules); the threads it starts can do nothing
// more than the spawner could.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "base/seccomp_filter.h"
#include "base/stack_thread.h"

namespace thaw {

class FilteredThreadSpawner {
 public:
  // Starts the spawner thread: it runs `prepare` (set-up its filter would
  // forbid later and that threads inherit, e.g. a scheduling policy), then
  // applies `filter`. Throws SysError when the thread cannot start or the
  // kernel refuses the filter; `filter` must outlive the spawner.
  explicit FilteredThreadSpawner(const SeccompFilter& filter, std::function<void()> prepare = {});
  ~FilteredThreadSpawner();
  FilteredThreadSpawner(const FilteredThreadSpawner&) = delete;
  FilteredThreadSpawner& operator=(const FilteredThreadSpawner&) = delete;

  // A thread running `body` under the filter from its first instruction,
  // on a stack of its own. Safe from any thread. Throws SysError naming
  // `name` when the stack or the thread cannot be made.
  StackThread spawn(std::function<void()> body, const std::string& name,
                    size_t stack_bytes = StackThread::kDefaultStackBytes);

  const SeccompFilter& filter() const { return filter_; }

 private:
  void serve(const std::function<void()>& prepare);

  const SeccompFilter& filter_;
  std::mutex mutex_;
  std::condition_variable changed_;
  // One request at a time (spawns are serialised by request_mutex_).
  std::mutex request_mutex_;
  const ThreadStack* stack_ = nullptr;
  std::function<void()> body_;
  bool pending_ = false;
  int result_ = 0;
  pthread_t started_{};
  bool stopping_ = false;
  // How the spawner's own start ended: -1 still starting, 0 ready, else errno.
  int start_error_ = -1;
  StackThread thread_;
};

}  // namespace thaw
