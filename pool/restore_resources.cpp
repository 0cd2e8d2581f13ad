#include "pool/restore_resources.h"

#include <spdlog/spdlog.h>

namespace thaw::pool {

std::shared_ptr<const vmm::KvmHost> RestoreResources::kvm_host() {
  std::lock_guard lock(mutex_);
  if (!kvm_) kvm_ = vmm::KvmHost::open(kvm_device_);
  return kvm_;
}

std::shared_ptr<vmm::VmThreadSpawners> RestoreResources::thread_spawners() {
  std::lock_guard lock(mutex_);
  if (!spawners_ && !spawners_failed_) {
    try {
      spawners_ = vmm::VmThreadSpawners::start();
    } catch (const std::exception& e) {
      spawners_failed_ = true;
      spdlog::warn("filtered-thread spawners: {}; each clone's threads apply their own filters", e.what());
    }
  }
  return spawners_;
}

}  // namespace thaw::pool
