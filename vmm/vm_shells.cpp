#include "vmm/vm_shells.h"

namespace thaw::vmm {

namespace {

// KVM wants a 3-page TSS region on Intel; put it just under the LAPIC/IOAPIC
// area inside the MMIO gap where no RAM or device lives.
constexpr uint64_t kKvmTssAddress = 0xfffb'd000ULL;

}  // namespace

kvm::VmFd make_vm_shell(const kvm::KvmSystem& kvm, bool pit) {
  kvm::VmFd vm = kvm.create_vm();
  vm.set_tss_address(kKvmTssAddress);
  vm.create_irqchip();
  if (pit) vm.create_pit2();
  return vm;
}

size_t VmShellStock::fill(size_t count) {
  if (size() >= count) return 0;
  auto kvm = kvm::KvmSystem::open(kvm_path_);
  size_t made = 0;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (shells_.size() >= count) return made;
    }
    kvm::VmFd shell = make_vm_shell(kvm, pit_);
    std::lock_guard lock(mutex_);
    shells_.push_back(std::move(shell));
    ++made;
  }
}

std::optional<kvm::VmFd> VmShellStock::take(bool pit) {
  std::lock_guard lock(mutex_);
  if (pit != pit_ || shells_.empty()) return std::nullopt;
  kvm::VmFd shell = std::move(shells_.back());
  shells_.pop_back();
  return shell;
}

size_t VmShellStock::size() const {
  std::lock_guard lock(mutex_);
  return shells_.size();
}

}  // namespace thaw::vmm
