// Private memory of clones, from /proc/self/smaps: the pages of each
// clone's guest-memory mapping that are the clone's own (copy-on-write
// pages the guest wrote; file pages it only read are shared page cache).
// KVM's own per-VM memory is not in smaps and not counted.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace thaw::pool {

struct HostRange {
  uintptr_t start = 0;
  uintptr_t end = 0;  // exclusive
};

// Private_Clean + Private_Dirty bytes of the mappings that start inside
// each range, in the order given. `smaps` is the text of /proc/<pid>/smaps.
std::vector<uint64_t> private_bytes_in(std::string_view smaps, std::span<const HostRange> ranges);

// Reads /proc/self/smaps (a few ms for a process with many clones: call it
// from a background thread). Empty on failure.
std::string read_self_smaps();

}  // namespace thaw::pool
