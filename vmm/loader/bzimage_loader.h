// Loads a Linux bzImage through the 64-bit boot protocol
// (Documentation/arch/x86/boot.rst): the setup header is read from the file,
// the protected-mode kernel is copied to 1 MiB, and the entry point is the
// 64-bit one at load address + 0x200. The 16-bit setup code never runs.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "vmm/memory/guest_memory.h"
#include "vmm/x86_64/boot_params.h"

namespace thaw::vmm::loader {

// Offset of the 64-bit entry from the start of the protected-mode kernel.
inline constexpr uint64_t kBzImage64BitEntryOffset = 0x200;
// Default initrd_addr_max for kernels that leave it 0 (boot.rst).
inline constexpr uint32_t kDefaultInitrdAddrMax = 0x37ff'ffff;

struct BzImageKernel {
  x86::SetupHeader header{};  // as in the file; the zero page starts from it
  uint64_t load_addr = 0;     // where the protected-mode kernel went
  uint64_t entry = 0;         // 64-bit entry point
  uint64_t kernel_end = 0;    // end of the decompressor's buffer (init_size) or of the file's kernel
  uint64_t cmdline_limit = 0; // longest command line the kernel accepts
  uint64_t initrd_addr_max = 0;  // highest byte the initrd may occupy
};

// Parses only: every check that needs no guest memory. `ram_low_end` is the
// end of guest RAM below 4 GiB, to check init_size against.
BzImageKernel parse_bzimage(std::span<const uint8_t> image, const std::string& name, uint64_t ram_low_end);

// parse_bzimage, then copies the protected-mode kernel into guest RAM.
BzImageKernel load_bzimage(GuestMemory& mem, std::span<const uint8_t> image, const std::string& name);

}  // namespace thaw::vmm::loader
