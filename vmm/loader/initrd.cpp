#include "vmm/loader/initrd.h"

#include <algorithm>
#include <cstdio>

#include "base/hex_text.h"
#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::loader {

namespace {
constexpr uint64_t kPage = x86::kPageSize;

uint64_t align_down(uint64_t v) { return v & ~(kPage - 1); }
uint64_t align_up(uint64_t v) { return align_down(v + kPage - 1); }

}  // namespace

InitrdPlacement place_initrd(const GuestMemory& mem, uint64_t size, const std::string& name, uint64_t kernel_end,
                             uint64_t addr_max) {
  if (size == 0) return {};
  const uint64_t ram_low_end = mem.regions().empty() ? 0 : mem.regions().front().guest_end().value;
  // addr_max is the last byte the kernel can reach; +1 makes it an end.
  const uint64_t limit = std::min(ram_low_end, addr_max == UINT64_MAX ? addr_max : addr_max + 1);
  const uint64_t lowest = align_up(kernel_end);
  const uint64_t room = limit > lowest ? limit - lowest : 0;
  if (size > room) {
    throw InputError("initrd '" + name + "' is " + std::to_string(size) + " bytes; only " + std::to_string(room) +
                     " bytes fit between the kernel's end " + hex(lowest) + " and " + hex(limit) +
                     " (the end of guest RAM below 4 GiB or the kernel's initrd_addr_max)");
  }
  const uint64_t addr = align_down(limit - size);
  if (addr < lowest) {  // alignment pushed it into the kernel
    throw InputError("initrd '" + name + "' is " + std::to_string(size) + " bytes; page-aligned it does not fit above " +
                     "the kernel's end " + hex(lowest) + " below " + hex(limit));
  }
  return {addr, size};
}

InitrdPlacement load_initrd(GuestMemory& mem, std::span<const uint8_t> initrd, const std::string& name,
                            uint64_t kernel_end, uint64_t addr_max) {
  InitrdPlacement p = place_initrd(mem, initrd.size(), name, kernel_end, addr_max);
  if (p.size == 0) return p;
  const std::string what = "initrd '" + name + "'";
  mem.write(GuestAddress(p.addr), initrd, what.c_str());
  return p;
}

}  // namespace thaw::vmm::loader
