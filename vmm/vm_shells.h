// Prepared VM shells: KVM VMs made ahead of need, with their TSS address,
// in-kernel irqchip and (if the snapshot has one) PIT, so that a restore
// only adds memory, devices and vCPUs.
//
// Why ahead: KVM registers an MMU notifier on the process for each VM it
// creates, and registering one takes the lock of every memory mapping
// (VMA) in the process with the mmap lock held for writing. A template
// worker gains ~6 VMAs a clone, so KVM_CREATE_VM costs 0.09 ms in a fresh
// worker and 0.5 ms with 1,000 clones (bench/vm_create_bench.cpp), and
// every page fault in the worker waits meanwhile. A pool makes its shells
// in one batch while its worker is still small, before its first restore;
// the in-kernel PIT's kernel thread starts then too, off the restore path.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_system.h"
#include "vmm/kvm/vm_fd.h"

namespace thaw::vmm {

// One shell: a new VM with what Vm::build sets up before memory, devices and
// vCPUs. SysError when KVM refuses.
kvm::VmFd make_vm_shell(const kvm::KvmSystem& kvm, bool pit);

class VmShellStock {
 public:
  // Shells for VMs with an in-kernel PIT or without, on `kvm_path`.
  VmShellStock(std::string kvm_path, bool pit) : kvm_path_(std::move(kvm_path)), pit_(pit) {}

  // Makes shells until `count` are in stock; returns how many it made.
  // SysError when KVM refuses one (those made so far stay in stock).
  size_t fill(size_t count);
  // A shell for a VM that does (`pit`) or does not have a PIT; nullopt when
  // the stock is empty or holds the other kind.
  std::optional<kvm::VmFd> take(bool pit);
  size_t size() const;
  bool pit() const { return pit_; }

 private:
  const std::string kvm_path_;
  const bool pit_;
  mutable std::mutex mutex_;
  std::vector<kvm::VmFd> shells_;
};

}  // namespace thaw::vmm
