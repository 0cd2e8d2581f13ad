// fuzz_elf_loader: vmm/loader/elf_loader.h's load_elf_kernel (program
// headers, PT_LOAD segments, the PVH note) into 16 MiB of guest RAM.
#include <cstdint>
#include <span>

#include "vmm/loader/elf_loader.h"
#include "vmm/memory/guest_memory.h"
#include "base/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Anonymous memory: pages the loader does not touch cost nothing.
  auto mem = thaw::vmm::GuestMemory::anonymous(16ull << 20);
  try {
    auto kernel = thaw::vmm::loader::load_elf_kernel(mem, std::span<const uint8_t>(data, size), "fuzz.elf");
    if (kernel.load_end > mem.size() || kernel.load_start > kernel.load_end) __builtin_trap();
  } catch (const thaw::InputError&) {
  }
  return 0;
}
