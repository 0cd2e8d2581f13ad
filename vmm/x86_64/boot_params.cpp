#include "vmm/x86_64/boot_params.h"

#include <cstring>

#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

namespace {
// End of the setup heap, as an offset from the real-mode code minus 0x200
// (boot.rst, heap_end_ptr). Only the 16-bit setup code uses it; we set it
// because boot.rst asks loaders that set CAN_USE_HEAP to.
constexpr uint16_t kHeapEndPtr = 0xe000 - 0x200;

uint32_t low32(uint64_t v) { return static_cast<uint32_t>(v & 0xffff'ffffu); }
uint32_t high32(uint64_t v) { return static_cast<uint32_t>(v >> 32); }
}  // namespace

SetupHeader elf_setup_header() {
  SetupHeader h{};
  h.boot_flag = kBootFlagMagic;
  h.header = kHdrSMagic;
  h.version = kBootProtocolElf;
  h.loadflags = kLoadedHigh;
  h.xloadflags = kXlfKernel64;
  h.cmdline_size = static_cast<uint32_t>(kElfCmdlineMaxLen);
  return h;
}

BootParams build_boot_params(const BootParamsInput& in) {
  if (in.e820.size() > kE820MaxEntries) {
    throw InputError("e820 map has " + std::to_string(in.e820.size()) + " entries; boot_params holds at most " +
                     std::to_string(kE820MaxEntries));
  }
  BootParams bp;
  std::memset(&bp, 0, sizeof bp);
  bp.hdr = in.header;
  // We are not one of the registered boot loaders (boot.rst: 0xff = undefined).
  bp.hdr.type_of_loader = kLoaderTypeUndefined;
  bp.hdr.loadflags |= kCanUseHeap;
  bp.hdr.heap_end_ptr = kHeapEndPtr;

  bp.hdr.cmd_line_ptr = low32(in.cmdline_addr);
  bp.ext_cmd_line_ptr = high32(in.cmdline_addr);
  // cmdline_size stays what the kernel declared (bzImage) or the ELF
  // limit: the command line itself is NUL-terminated.

  bp.hdr.ramdisk_image = low32(in.initrd_addr);
  bp.hdr.ramdisk_size = low32(in.initrd_size);
  bp.ext_ramdisk_image = high32(in.initrd_addr);
  bp.ext_ramdisk_size = high32(in.initrd_size);

  bp.e820_entries = static_cast<uint8_t>(in.e820.size());
  for (size_t i = 0; i < in.e820.size(); ++i) bp.e820_table[i] = in.e820[i];
  return bp;
}

}  // namespace thaw::vmm::x86
