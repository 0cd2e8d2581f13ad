// Builders for small, synthetic kernel images: ELF64 executables and
// bzImages with just enough header for the loaders. Tests corrupt one field
// at a time to check each validation.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "base/errors.h"
#include "vmm/x86_64/boot_params.h"

namespace thaw::vmm::testing {

struct ElfSegment {
  uint32_t type = PT_LOAD;
  uint64_t paddr = 0;
  std::vector<uint8_t> data;  // file contents (p_filesz = data.size())
  uint64_t memsz = 0;         // 0: same as data.size()
};

// A PT_NOTE payload holding one Xen note of `type` with a desc of `desc_bytes` bytes.
inline std::vector<uint8_t> xen_note(uint32_t type, uint64_t value, uint32_t desc_bytes = 8) {
  std::vector<uint8_t> note(12 + 4 + ((desc_bytes + 3) & ~3u), 0);
  uint32_t hdr[3] = {4, desc_bytes, type};
  std::memcpy(note.data(), hdr, sizeof hdr);
  std::memcpy(note.data() + 12, "Xen", 4);
  std::memcpy(note.data() + 16, &value, desc_bytes > 8 ? 8 : desc_bytes);
  return note;
}

// ELF header at 0, program headers at 64, segment data after them.
inline std::vector<uint8_t> make_elf(uint64_t entry, const std::vector<ElfSegment>& segments) {
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = entry;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(segments.size());

  std::vector<uint8_t> out(sizeof(Elf64_Ehdr) + segments.size() * sizeof(Elf64_Phdr));
  std::memcpy(out.data(), &eh, sizeof eh);
  for (size_t i = 0; i < segments.size(); ++i) {
    const auto& s = segments[i];
    while (out.size() % 16 != 0) out.push_back(0);
    Elf64_Phdr ph{};
    ph.p_type = s.type;
    ph.p_offset = out.size();
    ph.p_vaddr = s.paddr;
    ph.p_paddr = s.paddr;
    ph.p_filesz = s.data.size();
    ph.p_memsz = s.memsz != 0 ? s.memsz : s.data.size();
    ph.p_align = 16;
    out.insert(out.end(), s.data.begin(), s.data.end());
    std::memcpy(out.data() + sizeof(Elf64_Ehdr) + i * sizeof(Elf64_Phdr), &ph, sizeof ph);
  }
  return out;
}

// One 4 KiB code segment at 1 MiB whose first bytes are `hlt; jmp .`.
inline std::vector<uint8_t> make_minimal_elf(uint64_t load = 0x100000) {
  std::vector<uint8_t> code(4096, 0x90);
  code[0] = 0xf4;
  return make_elf(load, {ElfSegment{PT_LOAD, load, code, 0x2000}});
}

inline Elf64_Ehdr elf_header_of(const std::vector<uint8_t>& img) {
  Elf64_Ehdr eh;
  std::memcpy(&eh, img.data(), sizeof eh);
  return eh;
}
inline void set_elf_header(std::vector<uint8_t>& img, const Elf64_Ehdr& eh) { std::memcpy(img.data(), &eh, sizeof eh); }
inline Elf64_Phdr phdr_of(const std::vector<uint8_t>& img, size_t i) {
  Elf64_Phdr ph;
  std::memcpy(&ph, img.data() + sizeof(Elf64_Ehdr) + i * sizeof ph, sizeof ph);
  return ph;
}
inline void set_phdr(std::vector<uint8_t>& img, size_t i, const Elf64_Phdr& ph) {
  std::memcpy(img.data() + sizeof(Elf64_Ehdr) + i * sizeof ph, &ph, sizeof ph);
}

struct BzImageSpec {
  uint8_t setup_sects = 4;
  uint16_t version = 0x020f;
  uint16_t xloadflags = x86::kXlfKernel64;
  uint8_t loadflags = x86::kLoadedHigh;
  uint32_t init_size = 0x20'0000;
  uint64_t pref_address = 0x100'0000;  // LOAD_PHYSICAL_ADDR of a default x86-64 config
  uint32_t kernel_alignment = 0x20'0000;
  uint32_t cmdline_size = 2047;
  uint32_t initrd_addr_max = 0x7fff'ffff;
  size_t pm_size = 0x2000;  // protected-mode kernel bytes after the setup sectors
};

// Setup sectors with a header at 0x1f1, then a protected-mode "kernel" whose
// byte i is (i * 7) & 0xff.
inline std::vector<uint8_t> make_bzimage(const BzImageSpec& s = {}) {
  const size_t setup = (size_t{s.setup_sects == 0 ? uint8_t{4} : s.setup_sects} + 1) * 512;
  std::vector<uint8_t> img(setup + s.pm_size, 0);
  x86::SetupHeader h{};
  h.setup_sects = s.setup_sects;
  h.boot_flag = x86::kBootFlagMagic;
  // jmp short to the end of the header: 0x202 + 0x6a = 0x26c.
  h.jump = 0x6aeb;
  h.header = x86::kHdrSMagic;
  h.version = s.version;
  h.loadflags = s.loadflags;
  h.code32_start = 0x100000;
  h.initrd_addr_max = s.initrd_addr_max;
  h.kernel_alignment = s.kernel_alignment;
  h.relocatable_kernel = 1;
  h.xloadflags = s.xloadflags;
  h.cmdline_size = s.cmdline_size;
  h.pref_address = s.pref_address;
  h.init_size = s.init_size;
  std::memcpy(img.data() + x86::kSetupHeaderFileOffset, &h, sizeof h);
  for (size_t i = 0; i < s.pm_size; ++i) img[setup + i] = static_cast<uint8_t>(i * 7);
  return img;
}

// Runs `f`; returns the message of the InputError it threw, or a marker
// that no test expects when it threw none.
template <class F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError thrown>";
}

}  // namespace thaw::vmm::testing

// EXPECT that string `text` contains `part`, printing both when it does not.
#define EXPECT_CONTAINS(text, part) \
  EXPECT_NE(std::string(text).find(part), std::string::npos) << "\"" << (text) << "\" lacks \"" << (part) << "\""
