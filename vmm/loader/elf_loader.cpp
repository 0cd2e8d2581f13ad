#include "vmm/loader/elf_loader.h"

#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <vector>

#include "base/hex_text.h"
#include "vmm/loader/image_bytes.h"
#include "base/errors.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::loader {

namespace {

std::string range(uint64_t start, uint64_t len) { return "[" + hex(start) + ", " + hex(start + len) + ")"; }

class ElfChecker {
 public:
  ElfChecker(std::span<const uint8_t> image, const std::string& name) : image_(image), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError("kernel '" + name_ + "': " + what);
  }

  Elf64_Ehdr header() const {
    if (image_.size() < sizeof(Elf64_Ehdr)) {
      fail("truncated ELF header (" + std::to_string(image_.size()) + " bytes, need " +
           std::to_string(sizeof(Elf64_Ehdr)) + ")");
    }
    auto eh = read_at<Elf64_Ehdr>(image_, 0);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) fail("not an ELF file (bad magic)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
      fail("ELF class " + std::to_string(eh.e_ident[EI_CLASS]) + " is not ELFCLASS64; only 64-bit kernels boot");
    }
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB) fail("ELF data encoding is not little-endian");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT) fail("ELF ident version is not EV_CURRENT");
    if (eh.e_machine != EM_X86_64) {
      fail("ELF machine " + std::to_string(eh.e_machine) + " is not x86-64 (" + std::to_string(EM_X86_64) + ")");
    }
    if (eh.e_type != ET_EXEC) fail("ELF type " + std::to_string(eh.e_type) + " is not ET_EXEC (an executable)");
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
      fail("e_phentsize " + std::to_string(eh.e_phentsize) + " is not " + std::to_string(sizeof(Elf64_Phdr)));
    }
    if (eh.e_phnum == 0) fail("no program headers");
    if (!in_bounds(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr), image_.size())) {
      fail("program headers " + range(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)) +
           " (e_phoff, e_phnum " + std::to_string(eh.e_phnum) + ") are outside the file (" +
           std::to_string(image_.size()) + " bytes)");
    }
    return eh;
  }

  void check_load_segment(const GuestMemory& mem, const Elf64_Phdr& ph, size_t index) const {
    const std::string seg = "segment " + std::to_string(index) + " " + range(ph.p_paddr, ph.p_memsz);
    if (ph.p_filesz > ph.p_memsz) {
      fail(seg + ": p_filesz " + hex(ph.p_filesz) + " is larger than p_memsz " + hex(ph.p_memsz));
    }
    if (!in_bounds(ph.p_offset, ph.p_filesz, image_.size())) {
      fail(seg + ": file range " + range(ph.p_offset, ph.p_filesz) + " is beyond the end of the file (" +
           std::to_string(image_.size()) + " bytes)");
    }
    if (ph.p_paddr < x86::kHighMemStart) {
      fail(seg + " starts below 1 MiB, where the boot structures (GDT, zero page, page tables, MP table) live");
    }
    if (ph.p_memsz > std::numeric_limits<uint64_t>::max() - ph.p_paddr ||
        !mem.contains(GuestAddress(ph.p_paddr), ph.p_memsz)) {
      fail(seg + " is outside guest RAM (" + std::to_string(mem.size() >> 20) + " MiB)");
    }
  }

  // Walks the notes of one PT_NOTE segment; returns the PVH entry if present.
  std::optional<uint64_t> find_pvh_note(const Elf64_Phdr& ph, size_t index) const {
    if (!in_bounds(ph.p_offset, ph.p_filesz, image_.size())) {
      fail("note segment " + std::to_string(index) + ": file range " + range(ph.p_offset, ph.p_filesz) +
           " is beyond the end of the file");
    }
    const uint64_t end = ph.p_offset + ph.p_filesz;
    uint64_t pos = ph.p_offset;
    while (end - pos >= sizeof(Elf64_Nhdr)) {
      auto nh = read_at<Elf64_Nhdr>(image_, pos);
      const uint64_t name_at = pos + sizeof(Elf64_Nhdr);
      const uint64_t name_len = (uint64_t{nh.n_namesz} + 3) & ~uint64_t{3};
      const uint64_t desc_at = name_at + name_len;
      const uint64_t desc_len = (uint64_t{nh.n_descsz} + 3) & ~uint64_t{3};
      if (!in_bounds(name_at, name_len, end) || !in_bounds(desc_at, desc_len, end)) {
        fail("note segment " + std::to_string(index) + ": note at file offset " + hex(pos) +
             " runs past the end of the segment");
      }
      const bool is_xen = nh.n_namesz == 4 && std::memcmp(image_.data() + name_at, "Xen", 4) == 0;
      if (is_xen && nh.n_type == kXenElfNotePhys32Entry) {
        // Linux emits the entry as a pointer-sized value; others as 32 bits.
        if (nh.n_descsz == 4) return read_at<uint32_t>(image_, desc_at);
        if (nh.n_descsz == 8) return read_at<uint64_t>(image_, desc_at);
        fail("PVH entry note has a " + std::to_string(nh.n_descsz) + "-byte value; expected 4 or 8");
      }
      pos = desc_at + desc_len;
    }
    return std::nullopt;
  }

 private:
  std::span<const uint8_t> image_;
  const std::string& name_;
};

}  // namespace

ElfKernel load_elf_kernel(GuestMemory& mem, std::span<const uint8_t> image, const std::string& name) {
  ElfChecker check(image, name);
  const Elf64_Ehdr eh = check.header();

  // Check everything before copying anything, so a bad file leaves RAM untouched.
  std::vector<std::pair<size_t, Elf64_Phdr>> loads;
  ElfKernel k;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    auto ph = read_at<Elf64_Phdr>(image, eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_LOAD && ph.p_memsz > 0) {
      check.check_load_segment(mem, ph, i);
      loads.emplace_back(i, ph);
    } else if (ph.p_type == PT_NOTE && !k.pvh_entry) {
      k.pvh_entry = check.find_pvh_note(ph, i);
    }
  }
  if (loads.empty()) check.fail("no PT_LOAD segment with contents");

  k.entry = eh.e_entry;
  k.load_start = std::numeric_limits<uint64_t>::max();
  bool entry_loaded = false;
  for (const auto& [i, ph] : loads) {
    k.load_start = std::min(k.load_start, ph.p_paddr);
    k.load_end = std::max(k.load_end, ph.p_paddr + ph.p_memsz);
    entry_loaded |= k.entry >= ph.p_paddr && k.entry < ph.p_paddr + ph.p_memsz;
  }
  if (!entry_loaded) {
    check.fail("entry point " + hex(k.entry) +
               " is not inside any PT_LOAD segment (e_entry must be a physical address)");
  }

  for (const auto& [i, ph] : loads) {
    const std::string what = "kernel '" + name + "' segment " + std::to_string(i);
    auto dst = mem.slice(GuestAddress(ph.p_paddr), ph.p_memsz, what.c_str());
    std::memcpy(dst.data(), image.data() + ph.p_offset, ph.p_filesz);
    // .bss and friends: memory the guest expects to read as zero.
    std::memset(dst.data() + ph.p_filesz, 0, ph.p_memsz - ph.p_filesz);
  }
  return k;
}

}  // namespace thaw::vmm::loader
