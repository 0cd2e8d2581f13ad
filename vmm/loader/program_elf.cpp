#include "vmm/loader/program_elf.h"

#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "base/hex_text.h"
#include "vmm/loader/image_bytes.h"
#include "guest/mini/program_abi.h"
#include "base/errors.h"

namespace thaw::vmm::loader {

namespace {

constexpr uint64_t kPage = 0x1000;
// Larger alignments than this are not a real program's; refusing them keeps
// the PIE bias arithmetic small.
constexpr uint64_t kMaxSegmentAlign = 1ull << 30;

bool is_power_of_two(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

class ProgramChecker {
 public:
  ProgramChecker(std::span<const uint8_t> image, const std::string& name) : image_(image), name_(name) {}

  [[noreturn]] void fail(const std::string& what) const { throw InputError("program '" + name_ + "': " + what); }

  Elf64_Ehdr header() const {
    if (image_.size() < sizeof(Elf64_Ehdr)) {
      fail("truncated ELF header (" + std::to_string(image_.size()) + " bytes, need " +
           std::to_string(sizeof(Elf64_Ehdr)) + ")");
    }
    auto eh = read_at<Elf64_Ehdr>(image_, 0);
    if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) {
      if (image_.size() >= 2 && image_[0] == '#' && image_[1] == '!') {
        fail("a script (starts with \"#!\"), not an ELF executable: pass its interpreter as the program");
      }
      fail("not an ELF executable (bad magic)");
    }
    if (eh.e_ident[EI_CLASS] != ELFCLASS64) fail("not a 64-bit ELF (ELFCLASS64): only x86-64 programs run");
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB) fail("ELF data encoding is not little-endian");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT) fail("ELF ident version is not EV_CURRENT");
    if (eh.e_machine != EM_X86_64) fail("ELF machine " + std::to_string(eh.e_machine) + " is not x86-64");
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) {
      fail("ELF type " + std::to_string(eh.e_type) + " is neither ET_EXEC nor ET_DYN (an executable)");
    }
    if (eh.e_phentsize != sizeof(Elf64_Phdr)) {
      fail("e_phentsize " + std::to_string(eh.e_phentsize) + " is not " + std::to_string(sizeof(Elf64_Phdr)));
    }
    if (eh.e_phnum == 0) fail("no program headers");
    const uint64_t table = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
    if (!in_bounds(eh.e_phoff, table, image_.size())) {
      fail("program headers at e_phoff " + hex(eh.e_phoff) + " (" + std::to_string(eh.e_phnum) +
           " of them) run past the end of the file (" + std::to_string(image_.size()) + " bytes)");
    }
    return eh;
  }

  void check_load(const Elf64_Phdr& ph, size_t index) const {
    const std::string seg = "PT_LOAD " + std::to_string(index) + " (p_vaddr " + hex(ph.p_vaddr) + ")";
    if (ph.p_filesz > ph.p_memsz) {
      fail(seg + ": p_filesz " + hex(ph.p_filesz) + " is larger than p_memsz " + hex(ph.p_memsz));
    }
    if (!in_bounds(ph.p_offset, ph.p_filesz, image_.size())) {
      fail(seg + ": file range p_offset " + hex(ph.p_offset) + " + p_filesz " + hex(ph.p_filesz) +
           " runs past the end of the file (" + std::to_string(image_.size()) + " bytes)");
    }
    if (ph.p_align > 1 && (!is_power_of_two(ph.p_align) || ph.p_align > kMaxSegmentAlign)) {
      fail(seg + ": p_align " + hex(ph.p_align) + " is not a power of two up to 1 GiB");
    }
    // Linux maps segments page by page: a file that breaks this does not run there either.
    if (ph.p_vaddr % kPage != ph.p_offset % kPage) {
      fail(seg + ": p_vaddr and p_offset " + hex(ph.p_offset) + " differ modulo the 4 KiB page");
    }
    if (ph.p_memsz > std::numeric_limits<uint64_t>::max() - ph.p_vaddr - kPage) {
      fail(seg + ": p_vaddr + p_memsz " + hex(ph.p_memsz) + " overflows");
    }
  }

 private:
  std::span<const uint8_t> image_;
  const std::string& name_;
};

}  // namespace

ProgramElf check_program_elf(std::span<const uint8_t> image, const std::string& name, uint64_t user_end) {
  ProgramChecker check(image, name);
  const Elf64_Ehdr eh = check.header();

  std::vector<Elf64_Phdr> loads;
  std::optional<uint64_t> pt_phdr;
  uint64_t max_align = kPage;
  for (size_t i = 0; i < eh.e_phnum; ++i) {
    const auto ph = read_at<Elf64_Phdr>(image, eh.e_phoff + i * sizeof(Elf64_Phdr));
    if (ph.p_type == PT_INTERP) {
      check.fail("dynamically linked (it has a PT_INTERP program interpreter): link it statically "
                 "(e.g. gcc -static)");
    }
    if (ph.p_type == PT_PHDR) pt_phdr = ph.p_vaddr;
    if (ph.p_type != PT_LOAD || ph.p_memsz == 0) continue;
    check.check_load(ph, i);
    max_align = std::max(max_align, ph.p_align);
    loads.push_back(ph);
  }
  if (loads.empty()) check.fail("no PT_LOAD segment with contents");
  std::sort(loads.begin(), loads.end(), [](const auto& a, const auto& b) { return a.p_vaddr < b.p_vaddr; });

  ProgramElf elf;
  elf.pie = eh.e_type == ET_DYN;
  if (elf.pie) {
    // Like Linux's ELF_ET_DYN_BASE: one fixed base, aligned for the largest p_align.
    const uint64_t base = (PROGRAM_PIE_BASE + max_align - 1) & ~(max_align - 1);
    const uint64_t first_page = loads.front().p_vaddr & ~(kPage - 1);
    if (first_page > base) {
      check.fail("ET_DYN program's lowest p_vaddr " + hex(loads.front().p_vaddr) + " is above the PIE base " +
                 hex(base) + "; a static-PIE starts at 0");
    }
    elf.bias = base - first_page;
  }

  for (size_t i = 0; i < loads.size(); ++i) {
    const auto& ph = loads[i];
    ProgramSegment s{ph.p_vaddr + elf.bias, ph.p_offset, ph.p_filesz, ph.p_memsz};
    const std::string seg = "segment at " + hex(s.addr) + " (" + hex(s.memsz) + " bytes)";
    if (ph.p_vaddr > UINT64_MAX - elf.bias || s.memsz > UINT64_MAX - s.addr) {
      check.fail("PT_LOAD at p_vaddr " + hex(ph.p_vaddr) + " wraps around the address space");
    }
    if (s.addr < PROGRAM_USER_BASE) {
      check.fail(seg + " lies below " + hex(PROGRAM_USER_BASE) + " (2 MiB), which is the guest kernel's");
    }
    if (s.addr + s.memsz > user_end) {
      check.fail(seg + " ends at " + hex(s.addr + s.memsz) + ", past the bottom of the stack " + hex(user_end) +
                 ": raise --mem");
    }
    if (!elf.segments.empty()) {
      const auto& prev = elf.segments.back();
      if (prev.addr + prev.memsz > s.addr) {
        check.fail(seg + " overlaps the segment at " + hex(prev.addr) + " (" + hex(prev.memsz) + " bytes)");
      }
    }
    elf.segments.push_back(s);
  }
  elf.load_start = elf.segments.front().addr;
  elf.load_end = elf.segments.back().addr + elf.segments.back().memsz;

  elf.entry = eh.e_entry + elf.bias;
  const bool entry_loaded = std::any_of(elf.segments.begin(), elf.segments.end(), [&](const ProgramSegment& s) {
    return elf.entry >= s.addr && elf.entry < s.addr + s.filesz;
  });
  if (!entry_loaded) check.fail("entry point " + hex(elf.entry) + " is not inside any PT_LOAD segment's file bytes");

  // AT_PHDR: libc finds its PT_TLS through it, so the table must be in memory.
  elf.phnum = eh.e_phnum;
  const uint64_t table = uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr);
  if (pt_phdr) {
    elf.phdr_addr = *pt_phdr + elf.bias;
  } else {
    for (const auto& s : elf.segments) {
      if (eh.e_phoff >= s.offset && in_bounds(eh.e_phoff - s.offset, table, s.filesz)) {
        elf.phdr_addr = s.addr + (eh.e_phoff - s.offset);
      }
    }
  }
  const bool phdr_loaded = std::any_of(elf.segments.begin(), elf.segments.end(), [&](const ProgramSegment& s) {
    return elf.phdr_addr >= s.addr && in_bounds(elf.phdr_addr - s.addr, table, s.filesz);
  });
  if (!phdr_loaded) {
    check.fail("the program headers (e_phoff " + hex(eh.e_phoff) +
               ") are not inside any PT_LOAD, so the program could not find its TLS segment (AT_PHDR)");
  }
  return elf;
}

}  // namespace thaw::vmm::loader
