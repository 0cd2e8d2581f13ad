// What every restore of one pool manager shares, made at the first restore
// and kept: /dev/kvm opened once (vmm/kvm_host.h) and the spawners of the
// clones' filtered threads (vmm/vm_thread_spawners.h).
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "vmm/kvm_host.h"
#include "vmm/vm_thread_spawners.h"

namespace thaw::pool {

class RestoreResources {
 public:
  explicit RestoreResources(std::string kvm_device) : kvm_device_(std::move(kvm_device)) {}

  // Throws SysError when the device cannot be opened; tried again next time.
  std::shared_ptr<const vmm::KvmHost> kvm_host();
  // Null where the kernel refuses the filters (said once): the clones'
  // threads then filter themselves, as before.
  std::shared_ptr<vmm::VmThreadSpawners> thread_spawners();

 private:
  const std::string kvm_device_;
  std::mutex mutex_;
  std::shared_ptr<const vmm::KvmHost> kvm_;           // guarded by mutex_
  std::shared_ptr<vmm::VmThreadSpawners> spawners_;  // guarded by mutex_
  bool spawners_failed_ = false;                     // guarded by mutex_
};

}  // namespace thaw::pool
