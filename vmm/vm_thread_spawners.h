// The two filtered kinds of thread a VM has, started by spawner threads
// that applied each filter once (base/filtered_thread_spawner.h): every
// vCPU thread under 'vcpu' (and SCHED_BATCH, vcpu.cpp says why), every
// vsock muxer under 'vsock'. A pool starts one pair and hands it to all its
// restores (VmConfig::thread_spawners), saving each clone two filter
// installs (~75-100 us of CPU each). Without it each thread applies its
// own filter as it starts, as a one-off VM does. With it, the pool's
// clones also share one vsock muxer, started here under 'vsock': a clone
// then has one thread of thaw's (its vCPU) instead of two.
#pragma once

#include <memory>

#include "base/filtered_thread_spawner.h"
#include "devices/virtio/vsock_muxer.h"

namespace thaw::vmm {

struct VmThreadSpawners {
  std::unique_ptr<FilteredThreadSpawner> vcpu;
  std::unique_ptr<FilteredThreadSpawner> vsock_muxer;
  // The muxer every vsock device of the pool's clones joins.
  std::shared_ptr<devices::VsockMuxer> shared_vsock_muxer;

  // Starts both and the shared muxer. Throws SysError when the kernel refuses a filter (the
  // caller can go on without spawners: threads then filter themselves).
  static std::shared_ptr<VmThreadSpawners> start();
};

}  // namespace thaw::vmm
