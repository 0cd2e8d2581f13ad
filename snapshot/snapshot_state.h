// The plain state a snapshot holds, apart from guest RAM itself: what the
// VMM captures at the boot-complete write and what a restore applies. Only
// snapshot/ turns it into the Cap'n Proto state file (state_codec.h).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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

struct SnapshotState {
  HostFingerprint host;
  MemoryLayout memory;
  vmm::MachineState machine;  // vCPUs, VM-wide KVM state, devices
  uint64_t boot_complete_after_ns = 0;  // cold boot time up to the boot-complete write
};

}  // namespace thaw::snapshot
