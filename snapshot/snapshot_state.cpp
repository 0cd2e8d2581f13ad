#include "snapshot/snapshot_state.h"

#include <algorithm>

#include "vmm/memory/guest_memory.h"

namespace thaw::snapshot {

uint64_t MemoryLayout::chunk_length(uint64_t i) const {
  uint64_t start = i * chunk_bytes;
  return start >= size_bytes ? 0 : std::min(chunk_bytes, size_bytes - start);
}

MemoryLayout MemoryLayout::for_ram(uint64_t ram_bytes, uint64_t chunk_bytes) {
  MemoryLayout layout;
  layout.size_bytes = ram_bytes;
  layout.chunk_bytes = chunk_bytes;
  for (const auto& r : vmm::plan_ram_regions(ram_bytes)) {
    layout.regions.push_back(SavedRegion{r.guest_start.value, r.size, r.file_offset});
  }
  return layout;
}

}  // namespace thaw::snapshot
