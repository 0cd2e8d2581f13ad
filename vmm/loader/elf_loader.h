// Loads an ELF64 x86-64 executable kernel (Linux vmlinux, thaw's mini guest)
// by physical address. Every header field is checked against the file size
// and guest RAM before a byte is copied: the file is untrusted input.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::loader {

// The Xen ELF note that carries the 32-bit PVH entry point (elfnote.h).
inline constexpr uint32_t kXenElfNotePhys32Entry = 18;

struct ElfKernel {
  uint64_t entry = 0;       // e_entry: the 64-bit entry, a physical address
  uint64_t load_start = 0;  // lowest p_paddr of a PT_LOAD segment
  uint64_t load_end = 0;    // first byte after the highest segment (p_paddr + p_memsz)
  std::optional<uint64_t> pvh_entry;
};

// Copies every PT_LOAD segment to p_paddr and zero-fills p_memsz beyond
// p_filesz. Segments must lie in guest RAM at or above kHighMemStart.
// Throws InputError naming `name` and the field that is wrong.
ElfKernel load_elf_kernel(GuestMemory& mem, std::span<const uint8_t> image, const std::string& name);

}  // namespace thaw::vmm::loader
