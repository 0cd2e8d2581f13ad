#include "rpc/cli/stop_signals.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

namespace thaw::cli {

StopSignals::StopSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  if (::pthread_sigmask(SIG_BLOCK, &set_, &old_) != 0) return;
  signal_fd_ = UniqueFd(::signalfd(-1, &set_, SFD_CLOEXEC));
  quit_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC));
  if (!signal_fd_ || !quit_fd_) {
    // No thread to take them: leave the signals as they were.
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    return;
  }
  active_ = true;
  thread_ = std::thread([this] { run(); });
}

StopSignals::~StopSignals() {
  if (!active_) return;
  uint64_t one = 1;
  (void)!::write(quit_fd_.get(), &one, sizeof one);
  thread_.join();
  ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

void StopSignals::on_signal(std::function<void(int)> handler) {
  std::lock_guard lock(mutex_);
  handler_ = std::move(handler);
}

int StopSignals::sleep_for(std::chrono::milliseconds duration) {
  std::unique_lock lock(mutex_);
  taken_.wait_for(lock, duration, [this] { return received_.load() != 0; });
  return received_.load();
}

void StopSignals::run() {
  while (true) {
    pollfd fds[2] = {{signal_fd_.get(), POLLIN, 0}, {quit_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    signalfd_siginfo info{};
    if (::read(signal_fd_.get(), &info, sizeof info) != static_cast<ssize_t>(sizeof info)) continue;
    std::lock_guard lock(mutex_);
    received_.store(static_cast<int>(info.ssi_signo));
    if (handler_) handler_(static_cast<int>(info.ssi_signo));
    taken_.notify_all();
  }
}

}  // namespace thaw::cli
