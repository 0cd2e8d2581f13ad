#include "vmm/x86_64/e820.h"

#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

namespace {
E820Entry entry(uint64_t start, uint64_t end, E820Type type) {
  return E820Entry{start, end - start, static_cast<uint32_t>(type)};
}
}  // namespace

std::vector<E820Entry> build_e820(const std::vector<MemoryRegion>& regions) {
  if (regions.empty() || regions.front().guest_start.value != 0 ||
      regions.front().size < kMinGuestRam) {
    uint64_t low = regions.empty() || regions.front().guest_start.value != 0 ? 0 : regions.front().size;
    throw InputError("guest RAM below 4 GiB is " + std::to_string(low >> 10) +
                     " KiB; the x86 boot layout needs at least " +
                     std::to_string(kMinGuestRam >> 10) + " KiB (1 MiB of boot structures plus the kernel)");
  }
  std::vector<E820Entry> map;
  // The real-mode area up to the EBDA is plain RAM the guest may reuse once
  // it has read the boot structures.
  map.push_back(entry(0, kEbdaStart, E820Type::kRam));
  // The MP table lives in [EBDA, 1 MiB); reserving it keeps the guest from
  // overwriting it before it has parsed it.
  map.push_back(entry(kEbdaStart, kHighMemStart, E820Type::kReserved));
  map.push_back(entry(kHighMemStart, regions.front().guest_end().value, E820Type::kRam));
  for (size_t i = 1; i < regions.size(); ++i) {
    map.push_back(entry(regions[i].guest_start.value, regions[i].guest_end().value, E820Type::kRam));
  }
  if (map.size() > kE820MaxEntries) {
    throw InputError("guest memory has " + std::to_string(map.size()) + " e820 entries; boot_params holds at most " +
                     std::to_string(kE820MaxEntries));
  }
  return map;
}

}  // namespace thaw::vmm::x86
