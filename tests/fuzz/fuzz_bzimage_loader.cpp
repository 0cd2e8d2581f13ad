// fuzz_bzimage_loader: vmm/loader/bzimage_loader.h: the setup header checks
// of parse_bzimage (with the first input byte choosing the end of low RAM)
// and load_bzimage into 32 MiB of guest RAM.
#include <cstdint>
#include <span>

#include "vmm/loader/bzimage_loader.h"
#include "vmm/memory/guest_memory.h"
#include "base/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint64_t ram_low_end = (1ull + data[0]) << 20;
  std::span<const uint8_t> image(data + 1, size - 1);
  try {
    auto k = thaw::vmm::loader::parse_bzimage(image, "fuzz.bzImage", ram_low_end);
    if (k.kernel_end > ram_low_end || k.load_addr > k.kernel_end) __builtin_trap();
  } catch (const thaw::InputError&) {
  }
  auto mem = thaw::vmm::GuestMemory::anonymous(32ull << 20);
  try {
    auto k = thaw::vmm::loader::load_bzimage(mem, image, "fuzz.bzImage");
    if (k.kernel_end > mem.size()) __builtin_trap();
  } catch (const thaw::InputError&) {
  }
  return 0;
}
