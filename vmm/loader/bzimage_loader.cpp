#include "vmm/loader/bzimage_loader.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "base/hex_text.h"
#include "vmm/loader/cmdline.h"
#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::loader {

namespace {

constexpr size_t kSectorSize = 512;
// boot.rst: "If this field is 0, the real value is 4."
constexpr uint8_t kDefaultSetupSects = 4;
// The short jump at 0x200 skips the header; its target marks the header's end.
constexpr size_t kJumpOffset = 0x200;
constexpr size_t kJumpTargetBase = 0x202;

std::string version_string(uint16_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%u.%02u", v >> 8, v & 0xff);
  return buf;
}

}  // namespace

BzImageKernel parse_bzimage(std::span<const uint8_t> image, const std::string& name, uint64_t ram_low_end) {
  auto fail = [&](const std::string& what) -> void { throw InputError("bzImage '" + name + "': " + what); };
  constexpr size_t kHeaderEnd = x86::kSetupHeaderFileOffset + sizeof(x86::SetupHeader);
  if (image.size() < kHeaderEnd) {
    fail("truncated: " + std::to_string(image.size()) + " bytes, the setup header alone ends at " + hex(kHeaderEnd));
  }

  BzImageKernel k;
  // Copy only as much as the kernel says its header holds; bytes after it
  // are setup code, not fields.
  size_t declared_end = kJumpTargetBase + image[kJumpOffset + 1];
  size_t copy = std::clamp(declared_end, kJumpTargetBase, kHeaderEnd) - x86::kSetupHeaderFileOffset;
  std::memcpy(&k.header, image.data() + x86::kSetupHeaderFileOffset, copy);
  const x86::SetupHeader& h = k.header;

  if (h.header != x86::kHdrSMagic) fail("no \"HdrS\" magic at 0x202: not a bzImage");
  if (h.boot_flag != x86::kBootFlagMagic) fail("boot flag at 0x1fe is " + hex(h.boot_flag) + ", not 0xaa55");
  if (h.version < x86::kBootProtocol2_06) {
    fail("boot protocol " + version_string(h.version) + " is too old; 2.06 or later is required");
  }
  if ((h.xloadflags & x86::kXlfKernel64) == 0) {
    fail("xloadflags " + hex(h.xloadflags) + " lack XLF_KERNEL_64: the kernel has no 64-bit entry point");
  }
  if ((h.loadflags & x86::kLoadedHigh) == 0) fail("loadflags lack LOADED_HIGH: a zImage, not a bzImage");

  const uint64_t setup_sects = h.setup_sects == 0 ? kDefaultSetupSects : h.setup_sects;
  const uint64_t pm_offset = (setup_sects + 1) * kSectorSize;
  if (pm_offset >= image.size()) {
    fail("truncated: " + std::to_string(setup_sects) + " setup sectors end at " + hex(pm_offset) +
         " but the file is " + std::to_string(image.size()) + " bytes, leaving no protected-mode kernel");
  }
  const uint64_t pm_size = image.size() - pm_offset;

  k.load_addr = x86::kHighMemStart;
  k.entry = k.load_addr + kBzImage64BitEntryOffset;
  // The decompressor needs init_size bytes from where it decompresses to:
  // the load address rounded up to kernel_alignment, but never below
  // pref_address (LOAD_PHYSICAL_ADDR; arch/x86/boot/compressed/head_64.S).
  // Everything up to the end of that buffer is the kernel's.
  // The header is packed: its fields are copied out, never bound to a
  // reference (std::max takes references; a misaligned one is UB). Every
  // size and address in it is the file's word, so all sums are checked: a
  // pref_address near 2^64 must not wrap around to a small kernel_end.
  const uint64_t pref_address = h.pref_address;
  const uint64_t init_size = h.init_size;
  uint64_t align = h.kernel_alignment;
  if (align == 0 || (align & (align - 1)) != 0) align = 1;  // not a power of two: no alignment
  const uint64_t aligned_load = (k.load_addr + align - 1) & ~(align - 1);  // align < 2^32: no wrap
  const uint64_t work_start = std::max(aligned_load, pref_address);
  uint64_t work_end = 0;
  uint64_t file_end = 0;
  if (__builtin_add_overflow(work_start, init_size, &work_end) ||
      __builtin_add_overflow(k.load_addr, pm_size, &file_end)) {
    fail("init_size " + hex(init_size) + " from " + hex(work_start) + " runs past the end of the address space");
  }
  k.kernel_end = std::max(file_end, work_end);
  if (k.kernel_end > ram_low_end) {
    fail("needs guest RAM up to " + hex(k.kernel_end) + " (init_size " + hex(init_size) + " from " +
         hex(work_start) + ", kernel " + hex(pm_size) + " bytes at " + hex(k.load_addr) +
         ") but guest RAM below 4 GiB ends at " + hex(ram_low_end));
  }
  const uint16_t version = h.version;
  const uint32_t cmdline_size = h.cmdline_size;
  const uint32_t initrd_addr_max = h.initrd_addr_max;
  k.cmdline_limit = bzimage_cmdline_limit(version, cmdline_size);
  k.initrd_addr_max = initrd_addr_max == 0 ? kDefaultInitrdAddrMax : initrd_addr_max;
  return k;
}

BzImageKernel load_bzimage(GuestMemory& mem, std::span<const uint8_t> image, const std::string& name) {
  const uint64_t low_end = mem.regions().empty() ? 0 : mem.regions().front().guest_end().value;
  BzImageKernel k = parse_bzimage(image, name, low_end);
  const uint64_t setup_sects = k.header.setup_sects == 0 ? kDefaultSetupSects : k.header.setup_sects;
  const auto pm = image.subspan((setup_sects + 1) * kSectorSize);
  const std::string what = "bzImage '" + name + "' protected-mode kernel";
  mem.write(GuestAddress(k.load_addr), pm, what.c_str());
  return k;
}

}  // namespace thaw::vmm::loader
