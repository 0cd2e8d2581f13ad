#include "vmm/x86_64/page_tables.h"

#include <array>

#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

namespace {
constexpr unsigned kEntriesPerTable = 512;
constexpr uint64_t kTwoMiB = 2ull << 20;
using Table = std::array<uint64_t, kEntriesPerTable>;
static_assert(sizeof(Table) == kPageSize);
}  // namespace

uint64_t write_identity_page_tables(GuestMemory& mem) {
  Table pml4{};
  pml4[0] = kPdptAddr | kPtePresent | kPteWritable;
  mem.write_obj(GuestAddress(kPml4Addr), pml4, "boot PML4");

  Table pdpt{};
  for (unsigned gib = 0; gib < kIdentityMapGiB; ++gib) {
    pdpt[gib] = (kPdAddr + gib * kPageSize) | kPtePresent | kPteWritable;
  }
  mem.write_obj(GuestAddress(kPdptAddr), pdpt, "boot PDPT");

  for (unsigned gib = 0; gib < kIdentityMapGiB; ++gib) {
    Table pd{};
    for (unsigned i = 0; i < kEntriesPerTable; ++i) {
      uint64_t phys = (static_cast<uint64_t>(gib) * kEntriesPerTable + i) * kTwoMiB;
      pd[i] = phys | kPtePresent | kPteWritable | kPtePageSize;
    }
    mem.write_obj(GuestAddress(kPdAddr + gib * kPageSize), pd, "boot page directory");
  }
  return kPml4Addr;
}

}  // namespace thaw::vmm::x86
