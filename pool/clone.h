// One clone of a template: a restored VM plus what the pool keeps beside
// it (the options it was restored with, its vsock socket, the tail of its
// console), and the background destroyer that tears clones down off the
// acquire and release paths (a VM teardown costs 15-25 ms on PVM).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "pool/agent_client.h"
#include "snapshot/vm_snapshot.h"

namespace thaw::pool {

class WarmPool;

// The last few KiB a guest wrote to its console, for error messages.
class ConsoleTail {
 public:
  static constexpr size_t kBytes = 4096;
  void append(std::span<const char> bytes);
  std::string text() const;
  void clear();

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

struct Clone {
  uint64_t serial = 0;  // unique within the manager; names the vsock socket
  std::string template_name;
  std::weak_ptr<WarmPool> pool;  // gone when the template was deleted
  std::string vsock_path;  // "" without a vsock device
  // A program template's clone (TemplateSpec::program): handed out paused
  // at its ready point, each invoke is one request through the mailbox.
  bool program = false;
  // A Linux template's clone: resumed when handed out, its agent takes
  // invoke("run") over vsock; like a program clone it is reset between
  // two requests (`served`).
  bool linux_program = false;
  // A program (or Linux) clone served a request since its last reset: the next invoke
  // on the same lease resets it first. Guarded by invoke_mutex.
  bool served = false;
  snapshot::RestoreOptions options;
  // Declared before the VM: the VM's vCPU threads write into it and are
  // joined when `restored` goes, first.
  ConsoleTail console;
  snapshot::RestoredVm restored;

  vmm::Vm& vm() { return *restored.vm; }

  // An invoke in flight registers its socket here, so release and
  // destruction can cut it short (shutdown) instead of waiting it out.
  // Returns false when the clone is already retired.
  bool begin_io(int fd);
  void end_io();
  // Marks the clone as no longer leased and shuts down an in-flight invoke.
  void retire();
  // A retired clone that is reset and leased again takes invokes again.
  void unretire();
  bool retired() const;

  // One invoke at a time per clone; a reset waits for it too (a program
  // request runs the VM itself and must not meet a reset half way).
  std::timed_mutex invoke_mutex;
  // When it was last taken from the pool (set under the pool's lock): how
  // long clones stay leased tells the refill whether to wait for returns.
  std::chrono::steady_clock::time_point leased_at{};

 private:
  mutable std::mutex io_mutex_;
  int active_fd_ = -1;
  bool retired_ = false;
};

// A call to the agent in `clone` over its vsock socket, wired to the clone:
// it gives up when the VM stops (why_gone) and registers its socket so a
// release or destruction can cut it short (on_socket).
AgentCall agent_call_for(Clone& clone, const std::string& function, std::span<const uint8_t> payload,
                         std::chrono::steady_clock::time_point deadline);

// Whether the snapshot's VM had a virtio-vsock device: its clones then
// need a socket each.
bool snapshot_has_vsock(const snapshot::LoadedSnapshot& snapshot);

// Restores a clone of `snapshot` with private copy-on-write memory (and the
// working set prefetched when `prefetch`), pausing on a clean guest exit,
// and starts its vCPU threads parked: resume() runs it. `vsock_path` is
// the clone's socket when the snapshot has a vsock device ("" otherwise).
// `kvm`: /dev/kvm as the pool keeps it open for all its restores;
// `spawners`: the pool's filtered-thread spawners (null: none).
std::shared_ptr<Clone> restore_clone(const snapshot::LoadedSnapshot& snapshot, const std::string& template_name,
                                     uint64_t serial, const std::string& vsock_path, bool prefetch,
                                     std::shared_ptr<const vmm::KvmHost> kvm,
                                     std::shared_ptr<vmm::VmThreadSpawners> spawners,
                                     vmm::VmShellStock* shells = nullptr);

// Returns a used clone to the snapshot point in place: pauses it, drops
// its private pages and reloads its state (snapshot::reset_vm). Throws
// GuestGone saying why it cannot: it stopped (crashed), did not pause, or
// the reset failed. Such a clone must be destroyed.
void reset_clone(Clone& clone, const snapshot::LoadedSnapshot& snapshot);
// The same for a caller that holds clone.invoke_mutex (an invoke that
// resets a program clone between two requests of one lease).
void reset_clone_held(Clone& clone, const snapshot::LoadedSnapshot& snapshot);

// Tears clones down on a few threads of its own. A KVM VM's teardown
// mostly waits (RCU grace periods as its irqchip, I/O buses and MMU
// notifier go: 15-25 ms a clone on PVM) rather than computing, so several
// teardowns overlap even on few cores: a thawd draining 1,000 clones, a
// deleted template, a trimmed surplus. The destructor finishes the queue.
class CloneDestroyer {
 public:
  static constexpr unsigned kDefaultThreads = 4;
  explicit CloneDestroyer(unsigned threads = kDefaultThreads);
  ~CloneDestroyer();
  CloneDestroyer(const CloneDestroyer&) = delete;
  CloneDestroyer& operator=(const CloneDestroyer&) = delete;

  void destroy(std::shared_ptr<Clone> clone);
  // Blocks until everything queued so far is gone.
  void drain();
  uint64_t destroyed() const;

 private:
  void main();

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<Clone>> queue_;
  unsigned busy_ = 0;  // threads tearing a clone down now
  bool stopping_ = false;
  uint64_t destroyed_ = 0;
  std::vector<std::thread> threads_;
};

}  // namespace thaw::pool
