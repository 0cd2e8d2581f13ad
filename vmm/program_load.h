// Wiring between a VmConfig's ProgramSpec and the pure program loader: the
// user's files are read and checked before /dev/kvm is opened (bad input
// is bad input on any host), then loaded into guest RAM after the kernel.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/loader/program_image.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/vm_config.h"

namespace thaw::vmm {

// The program's bytes and its packed files, read once.
struct ProgramFiles {
  std::vector<uint8_t> elf;
  std::vector<uint8_t> archive;  // cpio newc of files_dir; empty without one
  std::string guest_path;        // "/" + basename(spec.path)
};

// Reads the program file (regular file only, opened O_NONBLOCK so a FIFO is
// refused instead of blocking, at most 512 MiB) and packs files_dir, then
// runs every check that needs no guest memory: ELF static x86-64, argv and
// env, and the layout in `mem_mib` of RAM. Also refuses a program with an
// initrd, whose place in RAM the program's files and mailbox take. Throws
// InputError naming the path and what is wrong.
ProgramFiles read_program_files(const VmConfig& config);

// The same checks for a CLI that wants input errors before anything else;
// it returns nothing and keeps nothing.
void validate_program_spec(const VmConfig& config);

// Loads what read_program_files read into `mem` (see load_program_image).
loader::ProgramLayout load_program(GuestMemory& mem, const ProgramSpec& spec, const ProgramFiles& files);

// The command-line option that makes the mini guest run the program.
inline constexpr const char* kProgramCmdlineOption = "thaw.after=program";

}  // namespace thaw::vmm
