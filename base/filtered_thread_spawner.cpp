#include "base/filtered_thread_spawner.h"

#include "base/errors.h"

namespace thaw {

FilteredThreadSpawner::FilteredThreadSpawner(const SeccompFilter& filter, std::function<void()> prepare)
    : filter_(filter) {
  // A small stack: the spawner only waits and calls pthread_create.
  thread_ = StackThread([this, prepare = std::move(prepare)] { serve(prepare); },
                        "'" + filter.name() + "' thread spawner", 256 * 1024);
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return start_error_ >= 0; });
  if (start_error_ != 0) {
    lock.unlock();
    thread_.join();
    throw SysError("seccomp(SECCOMP_SET_MODE_FILTER)", start_error_,
                   "the '" + filter.name() + "' thread spawner's filter");
  }
}

FilteredThreadSpawner::~FilteredThreadSpawner() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void FilteredThreadSpawner::serve(const std::function<void()>& prepare) {
  int error = 0;
  try {
    if (prepare) prepare();
    filter_.apply_to_this_thread();
  } catch (const SysError& e) {
    error = e.error_number() != 0 ? e.error_number() : EPERM;
  } catch (const std::exception&) {
    error = EPERM;
  }
  std::unique_lock lock(mutex_);
  start_error_ = error;
  changed_.notify_all();
  if (error != 0) return;
  while (true) {
    changed_.wait(lock, [&] { return pending_ || stopping_; });
    if (pending_) {
      // Only futex, the signal masks and clone from here on: all the filter
      // allows. The new thread inherits it at clone.
      result_ = StackThread::start_on(*stack_, std::move(body_), &started_);
      body_ = nullptr;
      pending_ = false;
      changed_.notify_all();
      continue;
    }
    return;  // stopping, nothing pending
  }
}

StackThread FilteredThreadSpawner::spawn(std::function<void()> body, const std::string& name, size_t stack_bytes) {
  ThreadStack stack(stack_bytes, StackGuard::kGuardRegion, name + " stack");
  body = [&filter = filter_, body = std::move(body)] {
    filter.name_this_thread();
    body();
  };
  std::lock_guard one_at_a_time(request_mutex_);
  std::unique_lock lock(mutex_);
  if (stopping_) throw SysError("pthread_create", ESRCH, name + ": the thread spawner is stopping");
  stack_ = &stack;
  body_ = std::move(body);
  pending_ = true;
  changed_.notify_all();
  changed_.wait(lock, [&] { return !pending_; });
  stack_ = nullptr;
  if (result_ != 0) {
    throw SysError("pthread_create", result_, name + " (by the '" + filter_.name() + "' thread spawner)");
  }
  return StackThread(std::move(stack), started_);
}

}  // namespace thaw
