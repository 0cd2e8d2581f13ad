// Coordinates N vCPU threads: run, pause at a consistent point, resume,
// stop. Knows nothing about KVM: the VM gives it a "kick" function that
// forces one vCPU out of KVM_RUN. Testable with plain threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>

namespace thaw::vmm {

// Why a VM stopped, from the host's point of view.
enum class StopReason {
  kNone,
  kHostRequest,    // the VMM stopped it (CLI, pool, test)
  kBootComplete,   // boot-complete action "stop"
  kGuestExit,      // exit code 0 (debug-exit port or boot-complete exit byte): finished cleanly
  kGuestReset,     // i8042 reset (Linux reboot=k): ends the VM cleanly
  kGuestPowerOff,  // exit code EXIT_CODE_POWER_OFF (either place): ends the VM cleanly
  kGuestFailure,   // any other exit code: the guest reported a failure
  kTripleFault,    // KVM_EXIT_SHUTDOWN
  kInternalError,  // KVM could not run the guest (e.g. PVM emulation failure)
  kHostError,      // a VMM error while handling an exit
  kTimeout,        // the caller's deadline passed
};
const char* stop_reason_name(StopReason reason);
// True for reasons that mean the guest or VMM went wrong.
bool stop_reason_is_failure(StopReason reason);

enum class RunState { kRunning, kPausing, kPaused, kStopping, kStopped };

class RunControl {
 public:
  explicit RunControl(size_t vcpu_count);

  // Called with the lock held to force vCPU `index` out of KVM_RUN soon.
  void set_kick(std::function<void(size_t index)> kick) { kick_ = std::move(kick); }

  // --- vCPU thread side ---
  // Fast check after each exit: false means "go to park()".
  bool running() const { return state_.load(std::memory_order_acquire) == RunState::kRunning; }
  // Blocks while paused. Returns true to run again, false to leave the
  // thread. `on_resume` runs under the lock before returning true, so a vCPU
  // can clear its immediate_exit flag without racing the next kick.
  bool park(size_t index, const std::function<void()>& on_resume = {});
  // The vCPU thread is leaving (stopped or failed).
  void vcpu_exited(size_t index);

  // --- control side; each may be called from a vCPU thread too (non-blocking) ---
  void request_pause();
  void resume();
  // First reason wins; later stop requests keep it.
  void request_stop(StopReason reason, std::string detail = {});

  // Blocking waits for the control thread. Return false on timeout.
  bool wait_paused(std::chrono::milliseconds timeout);
  bool wait_stopped(std::chrono::milliseconds timeout);
  // Returns when the VM is paused or stopped (or the timeout passed).
  bool wait_paused_or_stopped(std::chrono::milliseconds timeout);

  RunState state() const { return state_.load(std::memory_order_acquire); }
  StopReason stop_reason() const;
  std::string stop_detail() const;

 private:
  void kick_all_locked();
  void update_locked();

  const size_t vcpu_count_;
  std::function<void(size_t)> kick_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::atomic<RunState> state_{RunState::kRunning};
  size_t parked_ = 0;
  size_t exited_ = 0;
  StopReason reason_ = StopReason::kNone;
  std::string detail_;
};

}  // namespace thaw::vmm
