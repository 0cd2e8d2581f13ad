// The e820 memory map the guest reads from boot_params: which guest-physical
// ranges are RAM and which are reserved for the firmware-like structures.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::x86 {

enum class E820Type : uint32_t { kRam = 1, kReserved = 2 };

#pragma pack(push, 1)
struct E820Entry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
};
#pragma pack(pop)
static_assert(sizeof(E820Entry) == 20);

// boot_params has room for this many entries.
inline constexpr unsigned kE820MaxEntries = 128;

// Smallest guest RAM the boot layout fits in: the fixed structures below
// 1 MiB and at least one page above.
inline constexpr uint64_t kMinGuestRam = 0x10'0000 + 0x1000;

// The map for guest RAM laid out as `regions` (from plan_ram_regions):
//   RAM [0, EBDA), reserved [EBDA, 1 MiB), RAM [1 MiB, end of the low region),
//   then every region above 4 GiB as RAM. The MMIO gap is left out (a hole).
// Throws InputError when the low region is smaller than kMinGuestRam.
std::vector<E820Entry> build_e820(const std::vector<MemoryRegion>& regions);

}  // namespace thaw::vmm::x86
