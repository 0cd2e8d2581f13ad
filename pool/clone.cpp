#include "pool/clone.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "base/background_thread.h"
#include "pool/invoke_protocol.h"
#include "pool/pool_types.h"

namespace thaw::pool {

void ConsoleTail::append(std::span<const char> bytes) {
  std::lock_guard lock(mutex_);
  text_.append(bytes.data(), bytes.size());
  if (text_.size() > 2 * kBytes) text_.erase(0, text_.size() - kBytes);
}

std::string ConsoleTail::text() const {
  std::lock_guard lock(mutex_);
  return text_.size() > kBytes ? text_.substr(text_.size() - kBytes) : text_;
}

void ConsoleTail::clear() {
  std::lock_guard lock(mutex_);
  text_.clear();
}

bool Clone::begin_io(int fd) {
  std::lock_guard lock(io_mutex_);
  if (retired_) return false;
  active_fd_ = fd;
  return true;
}

void Clone::end_io() {
  std::lock_guard lock(io_mutex_);
  active_fd_ = -1;
}

void Clone::retire() {
  std::lock_guard lock(io_mutex_);
  retired_ = true;
  // The invoking thread still owns (and closes) the fd; shutdown only wakes it.
  if (active_fd_ >= 0) ::shutdown(active_fd_, SHUT_RDWR);
}

void Clone::unretire() {
  std::lock_guard lock(io_mutex_);
  retired_ = false;
}

bool Clone::retired() const {
  std::lock_guard lock(io_mutex_);
  return retired_;
}

namespace {

using namespace std::chrono_literals;

}  // namespace

bool snapshot_has_vsock(const snapshot::LoadedSnapshot& snapshot) {
  return snapshot.state.machine.devices.vsock.has_value();
}

std::shared_ptr<Clone> restore_clone(const snapshot::LoadedSnapshot& snapshot, const std::string& template_name,
                                     uint64_t serial, const std::string& vsock_path, bool prefetch,
                                     std::shared_ptr<const vmm::KvmHost> kvm,
                                     std::shared_ptr<vmm::VmThreadSpawners> spawners, vmm::VmShellStock* shells) {
  auto clone = std::make_shared<Clone>();
  clone->serial = serial;
  clone->template_name = template_name;
  clone->options.memory = snapshot::MemoryBacking::kPrivate;
  clone->options.pause_on_guest_exit = true;
  clone->options.prefetch = prefetch;
  clone->options.kvm_path = kvm->path();
  clone->options.kvm = std::move(kvm);
  clone->options.thread_spawners = std::move(spawners);
  // The VM, which calls this, lives inside the clone.
  clone->options.console = [tail = &clone->console](std::span<const char> bytes) { tail->append(bytes); };
  if (!vsock_path.empty()) {
    // The device replaces a stale socket there (a killed daemon's) and
    // refuses a live one: never someone else's (base/unix_socket.h).
    clone->vsock_path = vsock_path;
    clone->options.vsock_path = vsock_path;
  }
  // The stock is the pool's: this restore takes from it, the options the
  // clone keeps for its resets do not point at it.
  snapshot::RestoreOptions first = clone->options;
  first.shells = shells;
  clone->restored = snapshot::restore_vm(snapshot, first);
  // Started paused: the vCPU threads park before the first guest
  // instruction, so an acquire only has to resume() them.
  vmm::Vm& vm = clone->vm();
  vm.control().request_pause();
  vm.start();
  if (!vm.control().wait_paused(5s)) {
    throw std::runtime_error("clone of '" + template_name + "': the vCPU threads did not park within 5 s (" +
                             vmm::stop_reason_name(vm.stop_reason()) + " " + vm.stop_detail() + ")");
  }
  return clone;
}

void reset_clone(Clone& clone, const snapshot::LoadedSnapshot& snapshot) {
  // An invoke still in flight ends soon: retire() cut a vsock one short, a
  // program request ends by its own deadline (at most the RPC's 60 s).
  std::lock_guard invoke_lock(clone.invoke_mutex);
  reset_clone_held(clone, snapshot);
}

void reset_clone_held(Clone& clone, const snapshot::LoadedSnapshot& snapshot) {
  if (!clone.restored.vm) throw GuestGone("the clone has no VM");
  vmm::Vm& vm = clone.vm();
  auto stopped = [&] {
    auto s = vm.state();
    return s == vmm::RunState::kStopping || s == vmm::RunState::kStopped;
  };
  auto guest_stopped = [&] {
    return GuestGone(std::string("the guest stopped: ") + vmm::stop_reason_name(vm.stop_reason()) + ": " +
                     vm.stop_detail());
  };
  if (stopped()) throw guest_stopped();
  if (!vm.pause(1s)) {
    if (stopped()) throw guest_stopped();
    throw GuestGone("the clone did not pause within 1 s");
  }
  try {
    snapshot::reset_vm(clone.restored, snapshot, clone.options);
  } catch (const std::exception& e) {
    throw GuestGone(std::string("reset failed: ") + e.what());
  }
  clone.console.clear();
  clone.served = false;
}

AgentCall agent_call_for(Clone& clone, const std::string& function, std::span<const uint8_t> payload,
                         std::chrono::steady_clock::time_point deadline) {
  AgentCall call;
  call.socket_path = clone.vsock_path;
  call.port = kAgentPort;
  call.function = function;
  call.payload = payload;
  call.deadline = deadline;
  vmm::Vm* vm = &clone.vm();
  call.why_gone = [vm]() -> std::string {
    switch (vm->state()) {
      case vmm::RunState::kRunning: return {};
      case vmm::RunState::kPausing:
      case vmm::RunState::kPaused: return "the guest exited (or the lease was released)";
      default:
        return std::string("the guest stopped: ") + vmm::stop_reason_name(vm->stop_reason()) + ": " + vm->stop_detail();
    }
  };
  Clone* raw = &clone;
  call.on_socket = [raw](int fd) {
    if (fd < 0) {
      raw->end_io();
      return true;
    }
    return raw->begin_io(fd);
  };
  return call;
}

CloneDestroyer::CloneDestroyer(unsigned threads) {
  for (unsigned i = 0; i < std::max(1u, threads); ++i) threads_.emplace_back([this] { main(); });
}

CloneDestroyer::~CloneDestroyer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  for (auto& t : threads_) t.join();
}

void CloneDestroyer::destroy(std::shared_ptr<Clone> clone) {
  if (!clone) return;
  clone->retire();
  {
    std::lock_guard lock(mutex_);
    queue_.push_back(std::move(clone));
  }
  changed_.notify_all();
}

void CloneDestroyer::drain() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [&] { return queue_.empty() && busy_ == 0; });
}

uint64_t CloneDestroyer::destroyed() const {
  std::lock_guard lock(mutex_);
  return destroyed_;
}

void CloneDestroyer::main() {
  make_this_thread_background();  // teardowns must not preempt the RPC loop
  std::unique_lock lock(mutex_);
  while (true) {
    changed_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) break;  // stopping, and nothing left
    auto clone = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    lock.unlock();
    try {
      // Only a clone whose VM was made listened there: one whose VM was
      // refused (a live socket at the path) leaves that socket alone.
      std::string socket = clone->restored.vm ? clone->vsock_path : std::string();
      if (clone->restored.vm) clone->restored.vm->stop();
      // An invoke may still hold a reference; the memory goes with the last one.
      clone.reset();
      if (!socket.empty()) ::unlink(socket.c_str());
    } catch (const std::exception& e) {
      spdlog::error("destroying a clone: {}", e.what());
    }
    lock.lock();
    --busy_;
    ++destroyed_;
    changed_.notify_all();
  }
}

}  // namespace thaw::pool
