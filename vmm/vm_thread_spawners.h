// The filtered threads a pool's clones share or are started by, made once
// per pool and handed to all its restores (VmConfig::thread_spawners):
// - a spawner thread that applied the 'vcpu' filter once
//   (base/filtered_thread_spawner.h) and starts every clone's vCPU thread
//   under it (and SCHED_BATCH, vcpu.cpp says why), saving each restore a
//   filter install (~75-100 us of CPU);
// - one vsock muxer under the 'vsock' filter that every clone's vsock
//   device joins, so a clone has one thread of thaw's (its vCPU), and a
//   restore starts no muxer.
// Without them, as for a one-off VM, each thread applies its own filter as
// it starts and each vsock device has a muxer of its own.
#pragma once

#include <memory>

#include "base/filtered_thread_spawner.h"
#include "devices/virtio/vsock_muxer.h"

namespace thaw::vmm {

struct VmThreadSpawners {
  std::unique_ptr<FilteredThreadSpawner> vcpu;
  // The muxer every vsock device of the pool's clones joins.
  std::shared_ptr<devices::VsockMuxer> shared_vsock_muxer;

  // Starts both, each under its filter. Throws SysError when the kernel
  // refuses a filter (the caller can go on without them: threads then
  // filter themselves).
  static std::shared_ptr<VmThreadSpawners> start();
};

}  // namespace thaw::vmm
