#include "vmm/vm_thread_spawners.h"

#include "base/background_thread.h"
#include "devices/virtio/vsock_seccomp.h"
#include "vmm/vcpu_seccomp.h"

namespace thaw::vmm {

std::shared_ptr<VmThreadSpawners> VmThreadSpawners::start() {
  auto spawners = std::make_shared<VmThreadSpawners>();
  spawners->vcpu = std::make_unique<FilteredThreadSpawner>(vcpu_thread_filter(), [] {
    make_this_thread_background();  // inherited: what each vCPU thread set itself
    prepare_thread_for_vcpu_filter();
  });
  spawners->shared_vsock_muxer =
      devices::VsockMuxer::start(&devices::vsock_muxer_filter(), devices::VsockMuxer::FilterCheck::kWait);
  return spawners;
}

}  // namespace thaw::vmm
