// Saving a paused VM into a snapshot directory, and restoring clones from
// one. This is where vmm's plain state structs meet the snapshot format.
#pragma once

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "snapshot/snapshot_dir.h"
#include "snapshot/working_set.h"
#include "vmm/memory/userfault_pager.h"
#include "vmm/vm.h"
#include "vmm/vm_shells.h"
#include "vmm/vm_thread_spawners.h"

namespace thaw::snapshot {

struct SaveResult {
  SnapshotWriteResult write;
  std::chrono::nanoseconds capture{0};  // reading state from KVM and devices
  std::chrono::nanoseconds total{0};
};

// Saves `vm`, which must be paused at a consistent point (Vm::pause or the
// boot-complete action "pause"), to `dir`.
SaveResult save_vm_snapshot(vmm::Vm& vm, const std::string& dir);
// On demand, for a running VM: pauses it at a consistent point, saves it,
// and lets it run on (also when saving fails).
SaveResult snapshot_running_vm(vmm::Vm& vm, const std::string& dir);

// The guest did not reach its boot-complete write: it stopped (the message
// gives the stop reason and detail) or the timeout passed.
struct BootIncomplete : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Cold boot -> pause at boot-complete -> save, the one way every caller
// makes a snapshot of a fresh guest. `vm` was created with
// BootCompleteAction::kPause and not started; this starts it, waits up to
// `timeout` for the pause at its boot-complete write and saves it to
// `dir`. The VM stays paused there. Throws BootIncomplete (the VM then
// stopped) when the guest never got there.
SaveResult boot_and_snapshot(vmm::Vm& vm, const std::string& dir, std::chrono::milliseconds timeout);

enum class MemoryBacking {
  kPrivate,  // MAP_PRIVATE of the memory file: lazy, shared page cache, copy-on-write
  kEager,    // io_uring read of the whole file into anonymous memory
  kUffd,     // anonymous memory filled page by page by a userfaultfd handler
};
const char* memory_backing_name(MemoryBacking backing);
// Parses "private", "eager" or "uffd"; throws InputError naming the value.
MemoryBacking parse_memory_backing(const std::string& name);

struct RestoreOptions {
  MemoryBacking memory = MemoryBacking::kPrivate;
  vmm::ConsoleSink console;
  bool verify_memory = false;  // eager only: check every chunk's hash while reading
  bool allow_tsc_mismatch = false;
  // Pause (instead of stop) when the guest reports it is done, so the clone
  // can be reset in place.
  bool pause_on_guest_exit = false;
  // uffd only: the pager remembers every page it serves, so the clone's
  // working set can be saved afterwards (save_recorded_working_set).
  // Cannot be combined with prefetch: prefetched pages never fault.
  bool record_working_set = false;
  // private or uffd: make the pages in the snapshot's working-set file
  // present before the vCPU runs (nothing happens when there is none).
  // Eager reads the whole memory file anyway and rejects it.
  bool prefetch = false;
  std::string kvm_path = "/dev/kvm";
  // /dev/kvm already open (vmm/kvm_host.h): a pool opens it once for all
  // its restores. Null: this restore opens kvm_path.
  std::shared_ptr<const vmm::KvmHost> kvm;
  // This clone's own vsock unix socket (see VmConfig::vsock_path). A
  // snapshot of a VM with a vsock device needs one, a snapshot of a VM
  // without one refuses it; the snapshot stores no path of its own.
  std::string vsock_path;
  bool vcpu_seccomp = true;  // see VmConfig::vcpu_seccomp
  // Started once by a pool for all its restores (VmConfig::thread_spawners);
  // null: the clone's threads apply their filters themselves.
  std::shared_ptr<vmm::VmThreadSpawners> thread_spawners;
  // Where to take a prepared VM from (vmm/vm_shells.h); none, or an empty
  // stock: the restore makes its VM itself.
  vmm::VmShellStock* shells = nullptr;
};

struct RestoreTimings {
  std::chrono::nanoseconds read_state{0};     // read, check and decode the state file
  std::chrono::nanoseconds map_memory{0};     // map or read guest RAM
  std::chrono::nanoseconds prefetch{0};       // read the working-set file and prefetch its pages
  uint64_t prefetch_bytes = 0;                // guest memory the prefetch made present
  std::chrono::nanoseconds create_vm{0};      // VM, irqchip, devices, vCPUs
  bool prepared_shell = false;                // the VM came from a VmShellStock
  std::chrono::nanoseconds apply_state{0};    // validate, then vCPU/VM/device state into KVM
  std::chrono::nanoseconds total{0};
};

// A restored clone: paused before its first instruction until start().
// The pager (uffd only) is declared first so it outlives the VM's vCPUs.
struct RestoredVm {
  std::unique_ptr<vmm::UserfaultPager> pager;
  std::unique_ptr<vmm::Vm> vm;
  RestoreTimings timings;
};

// Restores one clone of the snapshot in `dir`. The snapshot is untrusted:
// everything is validated before the first ioctl that applies it, and a
// failure leaves nothing behind.
RestoredVm restore_vm(const LoadedSnapshot& snapshot, const RestoreOptions& options);
RestoredVm restore_vm(const std::string& dir, const RestoreOptions& options);

// Writes the pages `clone`'s pager recorded (RestoreOptions::record_working_set)
// to `dir`/working-set and returns them. Pause or stop the clone first, so
// the set is the one at a known point of the guest's run.
WorkingSet save_recorded_working_set(RestoredVm& clone, const std::string& dir);

struct ResetResult {
  std::chrono::nanoseconds memory{0};       // drop private pages (eager: read the file again)
  std::chrono::nanoseconds apply_state{0};  // vCPU, VM and device state
  std::chrono::nanoseconds total{0};
};

// Returns a used clone to the snapshot without destroying its VM: drops the
// guest's private pages (MADV_DONTNEED) and reloads vCPU, VM and device
// state. The clone must be paused; resume() then runs it from the snapshot
// point. `snapshot` and `options` must be the ones it was restored with.
ResetResult reset_vm(RestoredVm& clone, const LoadedSnapshot& snapshot, const RestoreOptions& options);

}  // namespace thaw::snapshot
