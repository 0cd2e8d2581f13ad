#include "devices/virtio/vsock_muxer.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstdio>
#include <future>
#include <system_error>

#include "base/eventfd.h"

namespace thaw::devices {

namespace {

constexpr uint64_t kStopId = 0;

}  // namespace

VsockMuxer::VsockMuxer() {
  epoll_ = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throw std::system_error(errno, std::generic_category(), "epoll_create1 for the vsock muxer");
  stop_ = make_eventfd("stopping the vsock muxer");
  // One-shot too: it fires once, when the muxer stops.
  arm(stop_.get(), kStopId, EPOLL_CTL_ADD);
}

std::shared_ptr<VsockMuxer> VsockMuxer::start(const SeccompFilter* filter, FilterCheck check) {
  std::shared_ptr<VsockMuxer> muxer(new VsockMuxer());
  VsockMuxer* self = muxer.get();
  auto filtered = std::make_shared<std::promise<void>>();
  std::future<void> filter_applied = filtered->get_future();
  muxer->thread_ = StackThread([self, filter, filtered, check] {
    if (filter) {
      try {
        filter->apply_to_this_thread();
      } catch (const std::exception& e) {
        if (check == FilterCheck::kOnThread) {
          std::fprintf(stderr, "thaw: the vsock muxer's seccomp filter: %s; its devices serve nothing\n", e.what());
        }
        filtered->set_exception(std::current_exception());
        return;
      }
    }
    filtered->set_value();
    self->run();
  }, "vsock muxer");
  // A refusal ends the thread; `muxer` going out of scope joins it.
  if (check == FilterCheck::kWait) filter_applied.get();
  return muxer;
}

VsockMuxer::~VsockMuxer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  signal_eventfd(stop_.get());
  if (thread_.joinable()) thread_.join();
}

void VsockMuxer::arm(int fd, uint64_t id, int op) {
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLONESHOT;
  ev.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), op, fd, &ev) != 0 && op == EPOLL_CTL_ADD) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl(ADD) of an fd to the vsock muxer");
  }
  // A failed MOD: the registration went meanwhile (remove() took the fd out).
}

uint64_t VsockMuxer::add(int fd, ReadyHandler on_ready) {
  std::lock_guard lock(mutex_);
  const uint64_t id = next_id_++;
  registrations_.emplace(id, Registration{fd, std::move(on_ready)});
  try {
    arm(fd, id, EPOLL_CTL_ADD);
  } catch (...) {
    registrations_.erase(id);
    throw;
  }
  return id;
}

void VsockMuxer::rearm(uint64_t id) {
  std::lock_guard lock(mutex_);
  auto it = registrations_.find(id);
  if (it != registrations_.end()) arm(it->second.fd, id, EPOLL_CTL_MOD);
}

void VsockMuxer::remove(uint64_t id) {
  std::unique_lock lock(mutex_);
  auto it = registrations_.find(id);
  if (it == registrations_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
  // The handler is erased only once it is not running: its call uses it.
  const bool on_loop = loop_started_ && ::pthread_equal(::pthread_self(), loop_thread_);
  if (!on_loop) idle_.wait(lock, [&] { return running_ != id; });
  if (running_ == id) {
    // Removed by its own handler: the loop erases it after the call.
    it->second.fd = -1;
    return;
  }
  registrations_.erase(it);
}

size_t VsockMuxer::size() const {
  std::lock_guard lock(mutex_);
  size_t live = 0;
  for (const auto& [id, r] : registrations_) live += r.fd >= 0 ? 1 : 0;
  return live;
}

void VsockMuxer::run() {
  {
    std::lock_guard lock(mutex_);
    loop_thread_ = ::pthread_self();
    loop_started_ = true;
  }
  epoll_event events[64];
  while (true) {
    const int n = ::epoll_wait(epoll_.get(), events, 64, -1);
    if (n < 0 && errno != EINTR) return;  // only EBADF/EINVAL: nothing left to serve
    for (int i = 0; i < n; ++i) {
      const uint64_t id = events[i].data.u64;
      ReadyHandler* handler = nullptr;
      {
        std::lock_guard lock(mutex_);
        if (stopping_) return;
        if (id == kStopId) continue;
        auto it = registrations_.find(id);
        if (it == registrations_.end() || it->second.fd < 0) continue;  // removed since the wait
        handler = &it->second.on_ready;
        running_ = id;
      }
      // A handler catches what its device may throw; one that escapes
      // anyway ends the process, as any thread's would.
      const bool again = (*handler)();
      {
        std::lock_guard lock(mutex_);
        running_ = 0;
        auto it = registrations_.find(id);
        if (it != registrations_.end()) {
          if (it->second.fd < 0) {
            registrations_.erase(it);  // it removed itself
          } else if (again) {
            arm(it->second.fd, id, EPOLL_CTL_MOD);
          }
        }
      }
      idle_.notify_all();
    }
  }
}

}  // namespace thaw::devices
