#include "vmm/run_control.h"

namespace thaw::vmm {

const char* stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::kNone: return "none";
    case StopReason::kHostRequest: return "stopped by host";
    case StopReason::kBootComplete: return "boot complete";
    case StopReason::kGuestExit: return "guest exited cleanly";
    case StopReason::kGuestReset: return "guest reset";
    case StopReason::kGuestPowerOff: return "guest powered off";
    case StopReason::kGuestFailure: return "guest failure";
    case StopReason::kTripleFault: return "triple fault";
    case StopReason::kInternalError: return "KVM internal error";
    case StopReason::kHostError: return "VMM error";
    case StopReason::kTimeout: return "timeout";
  }
  return "unknown";
}

bool stop_reason_is_failure(StopReason reason) {
  switch (reason) {
    case StopReason::kGuestFailure:
    case StopReason::kTripleFault:
    case StopReason::kInternalError:
    case StopReason::kHostError:
    case StopReason::kTimeout: return true;
    default: return false;
  }
}

RunControl::RunControl(size_t vcpu_count) : vcpu_count_(vcpu_count) {}

bool RunControl::park(size_t index, const std::function<void()>& on_resume) {
  (void)index;
  std::unique_lock lock(mutex_);
  ++parked_;
  update_locked();
  changed_.wait(lock, [&] {
    auto s = state_.load();
    return s == RunState::kRunning || s == RunState::kStopping || s == RunState::kStopped;
  });
  --parked_;
  bool run_again = state_.load() == RunState::kRunning;
  if (run_again && on_resume) on_resume();
  return run_again;
}

void RunControl::vcpu_exited(size_t index) {
  (void)index;
  std::lock_guard lock(mutex_);
  ++exited_;
  // A vCPU that leaves on its own (error) takes the whole VM down with it.
  if (state_.load() == RunState::kRunning || state_.load() == RunState::kPausing ||
      state_.load() == RunState::kPaused) {
    if (reason_ == StopReason::kNone) reason_ = StopReason::kHostError;
    state_.store(RunState::kStopping);
    kick_all_locked();
  }
  update_locked();
}

void RunControl::request_pause() {
  std::lock_guard lock(mutex_);
  if (state_.load() != RunState::kRunning) return;
  state_.store(RunState::kPausing);
  kick_all_locked();
  update_locked();
}

void RunControl::resume() {
  std::lock_guard lock(mutex_);
  auto s = state_.load();
  if (s != RunState::kPaused && s != RunState::kPausing) return;
  state_.store(RunState::kRunning);
  changed_.notify_all();
}

void RunControl::request_stop(StopReason reason, std::string detail) {
  std::lock_guard lock(mutex_);
  if (reason_ == StopReason::kNone) {
    reason_ = reason;
    detail_ = std::move(detail);
  }
  if (state_.load() == RunState::kStopped || state_.load() == RunState::kStopping) return;
  state_.store(RunState::kStopping);
  kick_all_locked();
  update_locked();
  changed_.notify_all();
}

void RunControl::kick_all_locked() {
  if (!kick_) return;
  for (size_t i = 0; i < vcpu_count_; ++i) kick_(i);
}

// Moves Pausing -> Paused and Stopping -> Stopped once every vCPU is parked
// or gone, and wakes the waiters.
void RunControl::update_locked() {
  auto s = state_.load();
  if (s == RunState::kPausing && parked_ + exited_ == vcpu_count_) state_.store(RunState::kPaused);
  if (s == RunState::kStopping && exited_ == vcpu_count_) state_.store(RunState::kStopped);
  changed_.notify_all();
}

bool RunControl::wait_paused(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return state_.load() == RunState::kPaused; });
}

bool RunControl::wait_stopped(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return state_.load() == RunState::kStopped; });
}

bool RunControl::wait_paused_or_stopped(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] {
    auto s = state_.load();
    return s == RunState::kPaused || s == RunState::kStopped;
  });
}

StopReason RunControl::stop_reason() const {
  std::lock_guard lock(mutex_);
  return reason_;
}

std::string RunControl::stop_detail() const {
  std::lock_guard lock(mutex_);
  return detail_;
}

}  // namespace thaw::vmm
