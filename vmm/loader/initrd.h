// Placing the initial ramdisk: page-aligned, as high as the kernel allows,
// above the kernel, inside guest RAM below 4 GiB.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::loader {

struct InitrdPlacement {
  uint64_t addr = 0;
  uint64_t size = 0;
};

// Where an initrd of `size` bytes goes: the highest page-aligned address with
// addr >= kernel_end (rounded up to a page) and addr + size - 1 <= addr_max,
// within the low RAM region of `mem`. Throws InputError naming `name` when
// it does not fit.
InitrdPlacement place_initrd(const GuestMemory& mem, uint64_t size, const std::string& name, uint64_t kernel_end,
                             uint64_t addr_max);

// place_initrd, then copies it. An empty initrd places nothing: {0, 0}.
InitrdPlacement load_initrd(GuestMemory& mem, std::span<const uint8_t> initrd, const std::string& name,
                            uint64_t kernel_end, uint64_t addr_max);

}  // namespace thaw::vmm::loader
