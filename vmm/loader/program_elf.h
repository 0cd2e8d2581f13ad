// Checks a user's static x86-64 Linux executable before the mini guest runs
// it (thaw.after=program). The file is untrusted input: every header field
// is checked against the file size with overflow-safe arithmetic, and the
// segments against the user range of guest memory, before a byte is copied.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace thaw::vmm::loader {

// One PT_LOAD with its load bias already applied.
struct ProgramSegment {
  uint64_t addr = 0;    // guest address: p_vaddr + bias
  uint64_t offset = 0;  // p_offset
  uint64_t filesz = 0;  // bytes copied from the file
  uint64_t memsz = 0;   // bytes in memory; [filesz, memsz) reads as zero
};

struct ProgramElf {
  bool pie = false;      // ET_DYN (static-PIE): loaded at PROGRAM_PIE_BASE
  uint64_t bias = 0;     // added to every p_vaddr and to e_entry
  uint64_t entry = 0;    // e_entry + bias
  uint64_t phdr_addr = 0;  // where the program headers are in memory (AT_PHDR)
  uint64_t phnum = 0;    // AT_PHNUM
  uint64_t load_start = 0;  // lowest segment address
  uint64_t load_end = 0;    // first byte after the highest segment
  std::vector<ProgramSegment> segments;  // sorted by address, never overlapping
};

// Validates `image` (named `name` in errors, e.g. the host path): ELF64,
// little-endian, x86-64, ET_EXEC or ET_DYN, no PT_INTERP, PT_LOADs inside
// the file with p_filesz <= p_memsz, not overlapping, starting at or above
// PROGRAM_USER_BASE and ending at or below `user_end` (the stack's bottom;
// pass UINT64_MAX to check the file alone), the entry point inside a
// segment. The bias is 0 for ET_EXEC and PROGRAM_PIE_BASE minus the page
// of the lowest p_vaddr for ET_DYN (usually 0, so bias = PROGRAM_PIE_BASE).
// Throws InputError naming `name` and what is wrong.
ProgramElf check_program_elf(std::span<const uint8_t> image, const std::string& name,
                             uint64_t user_end = UINT64_MAX);

}  // namespace thaw::vmm::loader
