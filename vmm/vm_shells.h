// Prepared VM shells: KVM VMs made ahead of need, so that a restore only
// adds memory, the irqchip, devices and vCPUs. Only the VM itself: with the
// irqchip made before the memory slots a restore took ~5 ms longer on PVM
// (bench/restore_bench.cpp), so the chips still come after the memory.
//
// Why ahead: KVM registers an MMU notifier on the process for each VM it
// creates, and registering one takes the lock of every memory mapping
// (VMA) in the process with the mmap lock held for writing. A template
// worker gains ~6 VMAs a clone, so KVM_CREATE_VM costs 0.09 ms in a fresh
// worker and 0.5 ms with 1,000 clones (bench/vm_create_bench.cpp), and
// every page fault in the worker waits meanwhile. A pool makes its shells
// in one batch while its worker is still small, before its first restore.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vm_fd.h"

namespace thaw::vmm {

class VmShellStock {
 public:
  // Shells for VMs on `kvm_path`.
  explicit VmShellStock(std::string kvm_path) : kvm_path_(std::move(kvm_path)) {}

  // Makes shells until `count` are in stock; returns how many it made.
  // SysError when KVM refuses one (those made so far stay in stock).
  size_t fill(size_t count);
  // A shell; nullopt when the stock is empty.
  std::optional<kvm::VmFd> take();
  // Takes shells out until `keep` are left, `most` at a time, and returns
  // them for the caller to close where it may take its time (closing a
  // VM waits for KVM's grace periods).
  std::vector<kvm::VmFd> trim(size_t keep, size_t most);
  size_t size() const;

 private:
  const std::string kvm_path_;
  mutable std::mutex mutex_;
  std::vector<kvm::VmFd> shells_;
};

}  // namespace thaw::vmm
