// The thread that runs vsock devices' work: it polls each device's own
// epoll set (an epoll fd is itself pollable) and calls the device when that
// set has something ready. A one-off VM's device has a muxer of its own; a
// pool hands one muxer to all its clones (vmm/vm_thread_spawners.h), so a
// clone costs one thread (its vCPU) instead of two, and a restore starts
// one thread fewer.
//
// Each device's fd is watched one-shot: after a call the device is armed
// again only if the call says so, so a paused device, whose fds stay ready,
// costs the loop nothing until resume arms it (rearm()). Device work is
// short (copies between queues and sockets, never a blocking call), so
// the devices of one pool take turns without waiting on each other.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "base/seccomp_filter.h"
#include "base/stack_thread.h"
#include "base/unique_fd.h"

namespace thaw::devices {

class VsockMuxer {
 public:
  // What a device does when its fd is ready; returns whether to watch the
  // fd again now (false: a paused device, armed again by rearm()).
  using ReadyHandler = std::function<bool()>;

  // When the muxer learns that the kernel refused its filter.
  enum class FilterCheck {
    // A one-off VM's device: its restore does not wait the ~75 us the
    // kernel takes to install a filter. A refusal leaves the muxer serving
    // nothing, said on stderr, never serving unfiltered.
    kOnThread,
    // A pool's shared muxer, started once: start() waits for the filter and
    // throws its SysError, so the pool can say so before any clone needs it.
    kWait,
  };
  // Starts the thread; it applies `filter` (when given) before it serves
  // anything. Throws std::system_error when the host refuses the epoll
  // set, the eventfd or the thread.
  static std::shared_ptr<VsockMuxer> start(const SeccompFilter* filter = nullptr,
                                           FilterCheck check = FilterCheck::kOnThread);
  // Stops and joins the thread. Every device must have left (remove()).
  ~VsockMuxer();
  VsockMuxer(const VsockMuxer&) = delete;
  VsockMuxer& operator=(const VsockMuxer&) = delete;

  // Watches `fd` (a device's epoll fd, kept open by the caller until
  // remove()) and calls `on_ready` on the muxer thread when it is
  // readable. Returns the registration's id. std::system_error when
  // epoll refuses the fd.
  uint64_t add(int fd, ReadyHandler on_ready);
  // Watches the fd of `id` again (after a handler returned false). A no-op
  // for an id that was removed.
  void rearm(uint64_t id);
  // Stops watching. When it returns, the handler of `id` is not running
  // and will not run again (called from the handler itself, it does not
  // wait for itself).
  void remove(uint64_t id);

  // How many registrations are watched: for tests and stats.
  size_t size() const;

 private:
  struct Registration {
    int fd;
    ReadyHandler on_ready;
  };
  VsockMuxer();
  void run();
  void arm(int fd, uint64_t id, int op);

  UniqueFd epoll_;
  UniqueFd stop_;
  StackThread thread_;
  pthread_t loop_thread_{};  // set by the loop before it serves anything

  mutable std::mutex mutex_;
  std::condition_variable idle_;  // signalled when a handler call ends
  std::unordered_map<uint64_t, Registration> registrations_;
  uint64_t next_id_ = 1;  // 0 is the stop eventfd
  uint64_t running_ = 0;  // the id whose handler runs now; 0: none
  bool loop_started_ = false;
  bool stopping_ = false;
};

}  // namespace thaw::devices
