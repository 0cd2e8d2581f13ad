// The state file: a small fixed header followed by one packed Cap'n Proto
// message (snapshot/snapshot.capnp). The header lets a reader reject a
// wrong, truncated or corrupt file before the parser sees a byte of it:
//
//   offset  size  field
//        0     8  magic "THAWSNAP"
//        8     2  format major version (little-endian, like every field)
//       10     2  format minor version
//       12     4  header size in bytes (32)
//       16     8  payload length in bytes
//       24     8  XXH3-64 of the payload
//       32     -  payload: packed Cap'n Proto message, root SnapshotState
//
// Versions: a change that old readers can ignore (a new Cap'n Proto field
// with a default that means "as before") bumps the minor, and files of
// every minor of the same major stay readable both ways. Anything else
// (a field's meaning, a kernel struct's size, the header) bumps the major,
// and a reader refuses another major. Format 1.0 wrote one u32 version (1)
// where major and minor now are, so 1.0 files read as major 1, minor 0;
// tests/snapshot/data/state-format-1.0.bin is one, and a test reads it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "snapshot/snapshot_state.h"
#include "base/errors.h"  // the errors this API throws

namespace thaw::snapshot {

inline constexpr uint16_t kFormatMajor = 1;
// 1: the message repeats the minor (SnapshotState.formatMinor).
// 2: a VM may have no in-kernel PIT (VmState.noPit).
inline constexpr uint16_t kFormatMinor = 2;
inline constexpr uint32_t kStateHeaderBytes = 32;
inline constexpr char kStateArch[] = "x86_64";

// Bounds on what a state file may ask of the reader. The defaults are far
// above anything thaw writes and far below what would hurt the host.
struct DecodeLimits {
  uint64_t max_file_bytes = 64ull << 20;
  // Cap'n Proto reads at most this many words, which also bounds the
  // allocation a packed message can inflate to.
  uint64_t traversal_limit_words = (64ull << 20) / 8;
  uint32_t max_vcpus = 254;  // the MP table's APIC ids
  uint32_t max_msrs = 4096;
  uint32_t max_cpuid_entries = 256;
  uint64_t max_xsave_bytes = 1ull << 20;
  uint64_t max_memory_bytes = 1ull << 40;
};

// Serialises `state` into a complete state file image (header + payload).
// Does not validate: write_snapshot_dir() decodes what it wrote to check it.
std::vector<uint8_t> encode_state(const SnapshotState& state);

// Parses and validates a state file image. Everything is checked before it
// returns: header, checksum, sizes and counts, the exact size of every
// kernel struct, the memory layout against vmm::plan_ram_regions, the
// devices' list bounds, and a vsock device's queues against that layout.
// Throws InputError naming the first problem found. The host fingerprint
// is returned as saved, not compared: see check_host_compatible() in
// host_fingerprint.h.
SnapshotState decode_state(std::span<const uint8_t> file, const DecodeLimits& limits = {});

}  // namespace thaw::snapshot
