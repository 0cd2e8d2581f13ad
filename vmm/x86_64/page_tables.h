// Identity page tables for the boot vCPU: one PML4 entry, one PDPT, and
// kIdentityMapGiB page directories of 2 MiB pages. Long mode cannot be
// entered without paging, and the guest replaces these as soon as it can.
#pragma once

#include <cstdint>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::x86 {

// Page-table entry bits (Intel SDM vol. 3, 4.5).
inline constexpr uint64_t kPtePresent = 1ull << 0;
inline constexpr uint64_t kPteWritable = 1ull << 1;
inline constexpr uint64_t kPtePageSize = 1ull << 7;  // a 2 MiB page in a PD entry
inline constexpr uint64_t kPteAddrMask = 0x000f'ffff'ffff'f000ull;

// Writes the tables at kPml4Addr.. and returns the value for CR3.
uint64_t write_identity_page_tables(GuestMemory& mem);

}  // namespace thaw::vmm::x86
