// SIGINT and SIGTERM for the commands that keep VMs running (`thaw boot`,
// `thaw restore`): while a StopSignals lives they are blocked in every
// thread (it must be made before the VMs, whose threads inherit the mask)
// and taken by a thread of its own, so Ctrl-C or `kill` ends the run and
// the command tears its VMs down as usual, removing their vsock sockets,
// instead of dying with them.
#pragma once

#include <signal.h>
#include <string.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "base/unique_fd.h"
#include "vmm/run_control.h"

namespace thaw::cli {

class StopSignals {
 public:
  StopSignals();
  // Stops the thread and restores the signal mask.
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // Runs `handler(signo)` on the signal thread for each SIGINT/SIGTERM from
  // now on; an empty one only records it. Once this returns, the previous
  // handler is not running and never runs again.
  void on_signal(std::function<void(int)> handler);
  // The last signal taken, or 0.
  int received() const { return received_.load(); }
  // Sleeps for `duration` or until a signal is taken; returns the signal or 0.
  int sleep_for(std::chrono::milliseconds duration);

 private:
  void run();

  sigset_t set_{};
  sigset_t old_{};
  bool active_ = false;
  UniqueFd signal_fd_;
  UniqueFd quit_fd_;
  std::mutex mutex_;
  std::condition_variable taken_;
  std::function<void(int)> handler_;
  std::atomic<int> received_{0};
  std::thread thread_;
};

// Runs `wait()` while SIGINT/SIGTERM stop the VM behind `control` as a host
// request named after the signal (one taken before this counts too), so a
// wait of seconds ends at once; returns what `wait()` returned.
template <typename Wait>
auto wait_stopping_on_signal(StopSignals& signals, vmm::RunControl& control, Wait&& wait) {
  auto stop = [&control](int sig) {
    control.request_stop(vmm::StopReason::kHostRequest, std::string("SIG") + ::sigabbrev_np(sig));
  };
  signals.on_signal(stop);
  if (int sig = signals.received()) stop(sig);
  auto result = wait();
  signals.on_signal({});
  return result;
}

}  // namespace thaw::cli
