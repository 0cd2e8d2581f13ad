// Loads a user's static Linux program into the mini guest's RAM
// (thaw.after=program): ELF segments, the initial stack, the files archive,
// the program info page and an empty mailbox, before the first instruction
// runs. Pure: it writes guest memory only and needs no /dev/kvm.
//
// Layout (guest-physical = guest-virtual; see guest/mini/program_abi.h):
//   ram_top      = RAM size (program guests have at most 3 GiB: one region)
//   mailbox_addr = align_down(ram_top - MAILBOX_SIZE, 4 KiB)
//   files_addr   = align_down(mailbox_addr - files_size, 4 KiB)
//   stack_top    = align_down(files_addr, PROGRAM_KERNEL_TAIL_ALIGN)   (2 MiB)
//                  [stack_top, ram_top) is supervisor-only
//   stack_bottom = stack_top - PROGRAM_STACK_SIZE                      (8 MiB)
//   mmap_top     = stack_bottom (anonymous mmaps grow down from here)
//   brk_start    = align_up(end of the highest PT_LOAD, 4 KiB)
// It fits when brk_start + kMinProgramHeapBytes <= stack_bottom, so that
// brk and mmap share at least that much.
//
// Paths: the program's guest path is "/" + the basename of its host path
// ("/usr/bin/busybox" -> "/busybox"). It is argv[0], AT_EXECFN and
// /proc/self/exe; the user's arguments are argv[1..] (as in a shell: the
// command's name comes first, then what the user typed after it).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::loader {

// The MMIO gap starts at 3 GiB: below it RAM is one region, which the
// identity-mapped program and the info page's single ram_top rely on.
inline constexpr uint64_t kMaxProgramRamBytes = 3ull << 30;
// Least room left for brk and mmap together.
inline constexpr uint64_t kMinProgramHeapBytes = 1ull << 20;

struct ProgramLayout {
  uint64_t ram_top = 0;
  uint64_t mailbox_addr = 0;
  uint64_t mailbox_size = 0;  // MAILBOX_SIZE
  uint64_t files_addr = 0;
  uint64_t files_size = 0;
  uint64_t stack_top = 0;
  uint64_t stack_bottom = 0;
  uint64_t mmap_top = 0;
  uint64_t brk_start = 0;
  // Filled by load_program_image:
  uint64_t entry = 0;          // initial RIP
  uint64_t stack_pointer = 0;  // initial RSP
  uint64_t load_bias = 0;      // 0 for ET_EXEC, the PIE bias for ET_DYN
};

// The layout formula above, with the least RAM that fits in the message
// when it does not: "program 'x' needs 40 MiB but the guest has 32 MiB:
// raise --mem". `load_end` is the end of the highest PT_LOAD.
ProgramLayout plan_program_layout(uint64_t ram_bytes, uint64_t load_end, uint64_t files_size,
                                  const std::string& name);

// "/" + the last component of `host_path` (the guest has no host tree).
std::string guest_program_path(const std::string& host_path);

struct ProgramImageInput {
  std::span<const uint8_t> elf;         // the program file's bytes
  std::string name;                     // host path, for errors
  std::string exe_path;                 // guest path: argv[0], AT_EXECFN, exe_path
  std::vector<std::string> args;        // argv[1..]
  std::vector<std::string> env;         // the user's K=V, merged over the defaults
  std::span<const uint8_t> files_archive;  // cpio newc; empty: none
};

// Checks the whole input before it writes a byte (so a refusal leaves RAM
// as it was), then writes segments, stack, files, the info page at
// PROGRAM_INFO_ADDR and a zeroed mailbox header. Throws InputError naming
// what was wrong. AT_RANDOM's bytes come from the host's getrandom.
ProgramLayout load_program_image(GuestMemory& mem, const ProgramImageInput& in);

// The checks of load_program_image that need no guest memory: ELF, strings,
// paths and whether it all fits in `ram_bytes`. Returns the layout.
ProgramLayout check_program_image(uint64_t ram_bytes, const ProgramImageInput& in);

}  // namespace thaw::vmm::loader
