// One vCPU: its fd, its thread, and the KVM_RUN loop that dispatches exits
// to the buses. Pause/resume/stop go through the VM's RunControl.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "base/filtered_thread_spawner.h"
#include "base/seccomp_filter.h"
#include "base/stack_thread.h"
#include "devices/bus.h"
#include "vmm/kvm/vcpu_fd.h"
#include "vmm/run_control.h"

namespace thaw::vmm {

// Counts of exits by kind, for --json and the benchmarks.
struct VcpuExitCounts {
  std::atomic<uint64_t> io{0};
  std::atomic<uint64_t> mmio{0};
  std::atomic<uint64_t> other{0};
};

class Vcpu {
 public:
  // `filter`: the seccomp filter the thread applies before its first
  // KVM_RUN (vcpu_seccomp.h); null: none. `spawner`: the thread is started
  // by it, already under its filter and SCHED_BATCH (vm_thread_spawners.h).
  Vcpu(kvm::VcpuFd fd, size_t index, const devices::Bus& pio, const devices::Bus& mmio, RunControl& control,
       const SeccompFilter* filter = nullptr, FilteredThreadSpawner* spawner = nullptr);
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  kvm::VcpuFd& fd() { return fd_; }
  size_t index() const { return index_; }
  const VcpuExitCounts& exit_counts() const { return exits_; }
  // When this vCPU's thread first entered KVM_RUN (steady clock), or 0.
  int64_t first_entry_ns() const { return first_entry_ns_.load(std::memory_order_acquire); }

  // Starts the thread running the KVM_RUN loop.
  void start();
  // Forces the vCPU out of KVM_RUN soon (called with RunControl's lock held).
  void kick();
  void join();

  // The signal used to kick vCPU threads; its handler does nothing.
  static int kick_signal();
  static void install_kick_handler();

 private:
  void thread_main();
  // Handles one exit; returns false when the VM must stop.
  bool handle_exit();
  void handle_io(kvm_run* run);
  void handle_mmio(kvm_run* run);
  // Re-enters KVM_RUN with immediate_exit so an I/O or MMIO exit completes and
  // guest state is consistent before the vCPU parks (KVM API doc, KVM_RUN).
  void complete_pending_exit();
  // " rip=... cr2=..." for failure messages.
  std::string where_is_guest();

  kvm::VcpuFd fd_;
  size_t index_;
  const devices::Bus& pio_;
  const devices::Bus& mmio_;
  RunControl& control_;
  const SeccompFilter* filter_;
  FilteredThreadSpawner* spawner_;
  StackThread thread_;  // its stack costs no VMA of its own (stack_thread.h)
  std::atomic<bool> thread_ready_{false};
  pthread_t native_ = {};
  VcpuExitCounts exits_;
  std::atomic<int64_t> first_entry_ns_{0};
  uint64_t unhandled_logged_ = 0;
};

}  // namespace thaw::vmm
