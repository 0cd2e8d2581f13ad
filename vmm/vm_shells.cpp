#include "vmm/vm_shells.h"

namespace thaw::vmm {

size_t VmShellStock::fill(size_t count) {
  if (size() >= count) return 0;
  auto kvm = kvm::KvmSystem::open(kvm_path_);
  size_t made = 0;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (shells_.size() >= count) return made;
    }
    kvm::VmFd shell = kvm.create_vm();
    std::lock_guard lock(mutex_);
    shells_.push_back(std::move(shell));
    ++made;
  }
}

std::optional<kvm::VmFd> VmShellStock::take() {
  std::lock_guard lock(mutex_);
  if (shells_.empty()) return std::nullopt;
  kvm::VmFd shell = std::move(shells_.back());
  shells_.pop_back();
  return shell;
}

std::vector<kvm::VmFd> VmShellStock::trim(size_t keep, size_t most) {
  std::vector<kvm::VmFd> surplus;
  std::lock_guard lock(mutex_);
  while (shells_.size() > keep && surplus.size() < most) {
    surplus.push_back(std::move(shells_.back()));
    shells_.pop_back();
  }
  return surplus;
}

size_t VmShellStock::size() const {
  std::lock_guard lock(mutex_);
  return shells_.size();
}

}  // namespace thaw::vmm
