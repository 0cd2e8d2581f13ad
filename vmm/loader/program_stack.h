// The initial user stack of a static Linux program, built exactly where and
// how Linux's execve builds it (fs/binfmt_elf.c create_elf_tables), so an
// unmodified libc start-up finds argc, argv, envp and the auxiliary vector.
//
// From stack_top down:
//   8 zero bytes (Linux's end marker)
//   the execfn string (AT_EXECFN)
//   the argv strings, then the envp strings, in ascending order
//   (16-byte alignment) the platform string "x86_64" (AT_PLATFORM)
//   16 random bytes (AT_RANDOM: libc's stack protector and pointer guard)
//   (16-byte alignment, so that RSP % 16 == 0 at the entry point)
//   argc, argv[0..argc), NULL, envp[0..envc), NULL, auxv pairs, AT_NULL  <- RSP
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm::loader {

// Linux's own limit for one execve is larger, but a function's arguments
// have no business near it and this bounds what a request can make us write.
inline constexpr uint64_t kMaxProgramStringBytes = 128 * 1024;  // argv + envp, NULs included

// What a program gets when the user sets nothing. A user's K=V replaces the
// default of the same key; the guest has no /etc/profile to set these.
inline const std::vector<std::string>& default_program_environment() {
  static const std::vector<std::string> env = {"PATH=/bin:/usr/bin", "HOME=/", "TERM=dumb"};
  return env;
}

// The defaults with the user's entries merged over them: a user key that is
// a default replaces it in place, new keys follow in the user's order, and a
// key given twice keeps its last value. Throws InputError for an entry
// without '=', with an empty key or a NUL byte.
std::vector<std::string> program_environment(const std::vector<std::string>& user_env);

// Throws InputError when an argument has a NUL byte, or argv and envp
// together (NULs included) exceed kMaxProgramStringBytes.
void check_program_strings(const std::vector<std::string>& argv, const std::vector<std::string>& envp);

struct InitialStackInput {
  std::string execfn;              // AT_EXECFN: the program's guest path
  std::vector<std::string> argv;   // argv[0] included
  std::vector<std::string> envp;
  uint64_t entry = 0;              // AT_ENTRY
  uint64_t phdr_addr = 0;          // AT_PHDR
  uint64_t phnum = 0;              // AT_PHNUM
  uint64_t hwcap = 0;              // AT_HWCAP: CPUID leaf 1 EDX, as Linux gives
  std::array<uint8_t, 16> random{};  // AT_RANDOM's bytes
};

// Where things went; the stack pointer is the program's initial RSP.
struct InitialStack {
  uint64_t stack_pointer = 0;
  uint64_t random_addr = 0;
  uint64_t platform_addr = 0;
  uint64_t execfn_addr = 0;
  uint64_t argv_addr = 0;  // &argv[0] = stack_pointer + 8
};

// Writes the stack into [stack_bottom, stack_top) of `mem`. Throws
// InputError when it does not fit (it always does within the limits above).
InitialStack write_initial_stack(GuestMemory& mem, uint64_t stack_top, uint64_t stack_bottom,
                                 const InitialStackInput& in);

}  // namespace thaw::vmm::loader
