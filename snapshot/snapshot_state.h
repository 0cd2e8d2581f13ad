// The plain state a snapshot holds, apart from guest RAM itself: what the
// VMM captures at the boot-complete write and what a restore applies. Only
// snapshot/ turns it into the Cap'n Proto state file (state_codec.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "devices/legacy/boot_complete.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial_8250.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"
#include "vmm/machine_state.h"

namespace thaw::snapshot {

inline constexpr uint64_t kDefaultChunkBytes = 2ull << 20;  // one huge page
inline constexpr uint64_t kMinChunkBytes = 4096;
inline constexpr uint64_t kMaxChunkBytes = 1ull << 30;  // one io_uring op stays under 2 GiB

// Where the snapshot was taken. Restoring elsewhere may work (same CPU
// family, same backend) or not; check_host_compatible() says which differs.
struct HostFingerprint {
  std::string cpu_model;    // /proc/cpuinfo "model name"
  std::string kvm_backend;  // kvm_intel, kvm_amd, kvm_pvm
  std::string thaw_version;

  bool operator==(const HostFingerprint&) const = default;
};

// One guest-physical RAM range and where it lies in the memory file.
// Unlike vmm::MemoryRegion it has no host pointer: that means nothing on disk.
struct SavedRegion {
  uint64_t guest_start = 0;
  uint64_t size = 0;
  uint64_t file_offset = 0;

  bool operator==(const SavedRegion&) const = default;
};

// The memory file's shape and content hashes. The file is a raw image of
// `size_bytes` of RAM, cut into `chunk_bytes` chunks (the last may be
// shorter); chunk_hashes[i] is the XXH3-64 of chunk i, zero chunks included.
struct MemoryLayout {
  uint64_t size_bytes = 0;
  uint64_t chunk_bytes = kDefaultChunkBytes;
  std::vector<SavedRegion> regions;
  std::vector<uint64_t> chunk_hashes;

  uint64_t chunk_count() const { return chunk_bytes == 0 ? 0 : (size_bytes + chunk_bytes - 1) / chunk_bytes; }
  // Bytes in chunk `i`: chunk_bytes, except for a short last chunk.
  uint64_t chunk_length(uint64_t i) const;

  // The layout thaw uses for `ram_bytes` of RAM (vmm::plan_ram_regions),
  // without hashes yet: the memory file writer computes those.
  static MemoryLayout for_ram(uint64_t ram_bytes, uint64_t chunk_bytes = kDefaultChunkBytes);

  bool operator==(const MemoryLayout&) const = default;
};

// The virtio-vsock device: its MMIO transport and the device itself. No
// connections: they are reset on restore, and nothing host-specific (the
// unix socket path) is saved, so every clone gets its own.
struct VsockDeviceStates {
  devices::VirtioMmioState transport;
  devices::VsockState device;

  bool operator==(const VsockDeviceStates&) const = default;
};

struct DeviceStates {
  devices::Serial8250State serial;
  devices::I8042State i8042;
  devices::BootCompleteState boot_complete;
  devices::DebugExitState debug_exit;
  std::optional<VsockDeviceStates> vsock;  // absent: the VM has no vsock device

  bool operator==(const DeviceStates&) const = default;
};

struct SnapshotState {
  HostFingerprint host;
  MemoryLayout memory;
  std::vector<vmm::VcpuState> vcpus;
  vmm::VmState vm;
  DeviceStates devices;
  uint64_t boot_complete_after_ns = 0;  // cold boot time up to the boot-complete write
};

}  // namespace thaw::snapshot
