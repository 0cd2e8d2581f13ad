#include "snapshot/vm_snapshot.h"

#include <spdlog/spdlog.h>

#include "base/errors.h"
#include "snapshot/host_fingerprint.h"

namespace thaw::snapshot {

namespace {

using Clock = std::chrono::steady_clock;

}  // namespace

const char* memory_backing_name(MemoryBacking backing) {
  switch (backing) {
    case MemoryBacking::kPrivate: return "private";
    case MemoryBacking::kEager: return "eager";
    case MemoryBacking::kUffd: return "uffd";
  }
  return "unknown";
}

MemoryBacking parse_memory_backing(const std::string& name) {
  if (name == "private") return MemoryBacking::kPrivate;
  if (name == "eager") return MemoryBacking::kEager;
  if (name == "uffd") return MemoryBacking::kUffd;
  throw InputError("memory backing '" + name + "' is not one of private, eager, uffd");
}

SaveResult save_vm_snapshot(vmm::Vm& vm, const std::string& dir) {
  if (vm.state() != vmm::RunState::kPaused) {
    throw std::logic_error("save_vm_snapshot: the VM must be paused (it is " +
                           std::string(vm.state() == vmm::RunState::kRunning ? "running" : "stopped") + ")");
  }
  auto start = Clock::now();
  SnapshotState state;
  state.host = current_host_fingerprint(vmm::kvm::backend_name(vm.backend()));
  state.memory = MemoryLayout::for_ram(vm.memory().size());
  // Held until guest RAM is on disk, so the saved queue indices match the
  // rings in the saved memory.
  auto quiesce = vm.quiesce_devices();
  state.machine = vm.save_state();
  if (auto booted = vm.boot_complete_after()) state.boot_complete_after_ns = static_cast<uint64_t>(booted->count());
  SaveResult result;
  result.capture = Clock::now() - start;
  std::span<const uint8_t> memory(vm.memory().host_base(), vm.memory().size());
  result.write = write_snapshot_dir(dir, state, memory);
  result.total = Clock::now() - start;
  return result;
}

ResetResult reset_vm(RestoredVm& clone, const LoadedSnapshot& snapshot, const RestoreOptions& options) {
  vmm::Vm& vm = *clone.vm;
  if (vm.state() != vmm::RunState::kPaused) {
    throw std::logic_error("reset_vm: pause the clone first (a stopped clone has no vCPU threads left)");
  }
  auto start = Clock::now();
  ResetResult result;
  // No device may write guest memory between dropping the pages and
  // reloading its state (which also drops the clone's vsock streams).
  auto quiesce = vm.quiesce_devices();
  // Private pages go; file pages (private) or the pager (uffd) bring the
  // snapshot's content back on the next touch. Eager memory has no file
  // behind it, so it is read again: a reset then costs the whole file.
  vm.memory().discard_private_pages();
  if (options.memory == MemoryBacking::kEager) {
    ReadOptions read;
    read.dest_is_zeroed = true;
    read_memory_file_into(snapshot.memory_path, {vm.memory().host_base(), vm.memory().size()}, snapshot.state.memory,
                          read);
  }
  result.memory = Clock::now() - start;
  auto apply_start = Clock::now();
  vm.restore_state(snapshot.state.machine, {.allow_tsc_mismatch = options.allow_tsc_mismatch, .reset_in_place = true});
  result.apply_state = Clock::now() - apply_start;
  result.total = Clock::now() - start;
  return result;
}

SaveResult snapshot_running_vm(vmm::Vm& vm, const std::string& dir) {
  if (!vm.pause()) throw std::runtime_error("snapshot: the VM did not pause within 5 s");
  try {
    auto result = save_vm_snapshot(vm, dir);
    vm.resume();
    return result;
  } catch (...) {
    vm.resume();
    throw;
  }
}

SaveResult boot_and_snapshot(vmm::Vm& vm, const std::string& dir, std::chrono::milliseconds timeout) {
  if (vm.config().boot_complete_action != vmm::BootCompleteAction::kPause || vm.started()) {
    throw std::logic_error("boot_and_snapshot: the VM must be new and pause at its boot-complete write");
  }
  vm.start();
  bool settled = vm.wait(timeout);
  if (!settled || vm.state() != vmm::RunState::kPaused || !vm.boot_complete_after()) {
    std::string why = settled ? std::string(vmm::stop_reason_name(vm.stop_reason())) +
                                    (vm.stop_detail().empty() ? "" : ": " + vm.stop_detail())
                              : "no boot-complete write within " + std::to_string(timeout.count()) + " ms";
    vm.stop();
    throw BootIncomplete("the guest did not reach its boot-complete write (" + why + ")");
  }
  return save_vm_snapshot(vm, dir);
}

RestoredVm restore_vm(const std::string& dir, const RestoreOptions& options) {
  auto start = Clock::now();
  auto snapshot = read_snapshot_dir(dir);
  auto read_time = Clock::now() - start;
  auto restored = restore_vm(snapshot, options);
  restored.timings.read_state = read_time;
  restored.timings.total += read_time;
  return restored;
}

namespace {

// The snapshot's memory file mapped privately: from the descriptor the
// snapshot was loaded with, or opened by path when it was made by hand.
vmm::GuestMemory map_memory_file_privately(const LoadedSnapshot& snapshot) {
  const uint64_t bytes = snapshot.state.memory.size_bytes;
  if (!snapshot.memory_file) return vmm::GuestMemory::map_private_file(snapshot.memory_path, bytes);
  return vmm::GuestMemory::map_private_file(snapshot.memory_file->get(), snapshot.memory_path, bytes);
}

}  // namespace

RestoredVm restore_vm(const LoadedSnapshot& snapshot, const RestoreOptions& options) {
  auto start = Clock::now();
  const SnapshotState& state = snapshot.state;
  std::shared_ptr<const vmm::KvmHost> kvm = options.kvm ? options.kvm : vmm::KvmHost::open(options.kvm_path);
  std::string mismatch = check_host_compatible(state.host, current_host_fingerprint(vmm::kvm::backend_name(kvm->backend())));
  if (!mismatch.empty()) spdlog::warn("restoring on another host: {}", mismatch);
  if (state.memory.size_bytes % (1ull << 20) != 0) {
    throw InputError("snapshot memory size " + std::to_string(state.memory.size_bytes) + " is not a whole MiB");
  }

  if (options.record_working_set && options.memory != MemoryBacking::kUffd) {
    throw InputError(std::string("recording a working set needs uffd memory (the pager sees each page's first "
                                 "touch), not ") + memory_backing_name(options.memory));
  }
  if (options.record_working_set && options.prefetch) {
    throw InputError("record a working set without prefetch: prefetched pages never fault, so the recording "
                     "would miss them");
  }
  if (options.prefetch && options.memory == MemoryBacking::kEager) {
    throw InputError("prefetch needs private or uffd memory: eager reads the whole memory file anyway");
  }
  std::optional<WorkingSet> working_set;
  auto prefetch_read_start = Clock::now();
  if (options.prefetch) {
    // Before any memory is mapped: a malformed file fails the restore with nothing to undo.
    std::string dir = snapshot.dir;
    if (dir.empty()) {
      auto slash = snapshot.memory_path.rfind('/');
      dir = slash == std::string::npos ? "." : snapshot.memory_path.substr(0, slash);
    }
    working_set = read_working_set(dir, state.memory.size_bytes);
  }
  auto prefetch_read_time = Clock::now() - prefetch_read_start;

  RestoredVm restored;
  auto map_start = Clock::now();
  vmm::GuestMemory memory = options.memory == MemoryBacking::kPrivate
                                ? map_memory_file_privately(snapshot)
                                : vmm::GuestMemory::anonymous(state.memory.size_bytes);
  if (options.memory == MemoryBacking::kEager) {
    ReadOptions read;
    read.verify_hashes = options.verify_memory;
    read.dest_is_zeroed = true;
    read_memory_file_into(snapshot.memory_path, {memory.host_base(), memory.size()}, state.memory, read);
  }
  restored.timings.map_memory = Clock::now() - map_start;
  // uffd: the pages land in anonymous memory before the pager registers
  // it, so they are present and never fault.
  restored.timings.prefetch = prefetch_read_time;
  if (working_set) {
    auto prefetched = prefetch_working_set(memory, snapshot.memory_path, *working_set, memory.backing());
    restored.timings.prefetch += prefetched.elapsed;
    restored.timings.prefetch_bytes = prefetched.bytes;
  }

  auto create_start = Clock::now();
  vmm::VmConfig config;
  config.mem_mib = state.memory.size_bytes >> 20;
  config.vcpus = static_cast<unsigned>(state.machine.vcpus.size());
  config.console = options.console;
  config.boot_complete_action = vmm::BootCompleteAction::kContinue;
  config.kvm_path = options.kvm_path;
  config.pause_on_guest_exit = options.pause_on_guest_exit;
  config.kernel_path = "(snapshot)";
  config.vsock_path = options.vsock_path;
  config.vcpu_seccomp = options.vcpu_seccomp;
  config.thread_spawners = options.thread_spawners;
  config.pit = state.machine.vm.has_pit;
  std::optional<vmm::kvm::VmFd> shell = options.shells ? options.shells->take() : std::nullopt;
  restored.timings.prepared_shell = shell.has_value();
  restored.vm = vmm::Vm::create_for_restore(config, *kvm, std::move(memory), std::move(shell));
  if (options.memory == MemoryBacking::kUffd) {
    restored.pager = std::make_unique<vmm::UserfaultPager>(restored.vm->memory(), snapshot.memory_path,
                                                           options.record_working_set);
  }
  restored.timings.create_vm = Clock::now() - create_start;

  auto apply_start = Clock::now();
  vmm::Vm& vm = *restored.vm;
  try {
    vm.check_state(state.machine);
    vm.restore_state(state.machine, {.allow_tsc_mismatch = options.allow_tsc_mismatch});
  } catch (const StateError& e) {
    throw StateError(std::string("snapshot state rejected: ") + e.what());
  }
  restored.timings.apply_state = Clock::now() - apply_start;
  restored.timings.total = Clock::now() - start;
  return restored;
}

WorkingSet save_recorded_working_set(RestoredVm& clone, const std::string& dir) {
  if (!clone.pager || !clone.pager->recording()) {
    throw std::logic_error("save_recorded_working_set: the clone was not restored with record_working_set");
  }
  std::vector<uint64_t> offsets = clone.pager->recorded_pages();
  WorkingSet ws = working_set_from_offsets(offsets);
  write_working_set(dir, ws, clone.vm->memory().size());
  return ws;
}

}  // namespace thaw::snapshot
