// Builds small static "programs" the way a linker lays them out: headers
// at file offset 0 inside the first PT_LOAD (so AT_PHDR resolves), each
// further segment at a file offset congruent to its address modulo 4 KiB.
// Tests then break one field at a time.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <vector>

namespace thaw::vmm::testing {

struct ProgramSegmentSpec {
  uint64_t vaddr = 0;
  std::vector<uint8_t> data;  // p_filesz = data.size()
  uint64_t memsz = 0;         // 0: data.size()
  uint32_t type = PT_LOAD;
};

struct ProgramElfSpec {
  uint16_t type = ET_EXEC;
  uint64_t entry = 0x401000;
  uint64_t header_vaddr = 0x400000;  // the PT_LOAD of the headers; UINT64_MAX: none
  std::vector<ProgramSegmentSpec> segments;
  bool interp = false;  // add a PT_INTERP, as a dynamically linked program has
};

inline uint64_t round_up_to(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

inline std::vector<uint8_t> build_program_elf(const ProgramElfSpec& spec) {
  std::vector<Elf64_Phdr> phdrs;
  const bool header_load = spec.header_vaddr != UINT64_MAX;
  const size_t count = spec.segments.size() + (header_load ? 1 : 0) + (spec.interp ? 1 : 0);
  const uint64_t headers_end = sizeof(Elf64_Ehdr) + count * sizeof(Elf64_Phdr);
  std::vector<uint8_t> out(headers_end, 0);
  if (spec.interp) {
    Elf64_Phdr ph{};
    ph.p_type = PT_INTERP;
    const char path[] = "/lib64/ld-linux-x86-64.so.2";
    ph.p_offset = out.size();
    ph.p_filesz = ph.p_memsz = sizeof path;
    out.insert(out.end(), path, path + sizeof path);
    phdrs.push_back(ph);
  }
  if (header_load) {
    Elf64_Phdr ph{};
    ph.p_type = PT_LOAD;
    ph.p_vaddr = ph.p_paddr = spec.header_vaddr;
    ph.p_filesz = ph.p_memsz = headers_end;
    ph.p_align = 0x1000;
    phdrs.push_back(ph);
  }
  for (const auto& s : spec.segments) {
    uint64_t offset = round_up_to(out.size(), 0x1000) + s.vaddr % 0x1000;
    out.resize(offset, 0);
    Elf64_Phdr ph{};
    ph.p_type = s.type;
    ph.p_offset = offset;
    ph.p_vaddr = ph.p_paddr = s.vaddr;
    ph.p_filesz = s.data.size();
    ph.p_memsz = s.memsz != 0 ? s.memsz : s.data.size();
    ph.p_align = 0x1000;
    out.insert(out.end(), s.data.begin(), s.data.end());
    phdrs.push_back(ph);
  }
  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = spec.type;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_entry = spec.entry;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = static_cast<uint16_t>(phdrs.size());
  std::memcpy(out.data(), &eh, sizeof eh);
  std::memcpy(out.data() + sizeof eh, phdrs.data(), phdrs.size() * sizeof(Elf64_Phdr));
  return out;
}

// A text segment at 0x401000 (entry), data+bss at 0x402000.
inline ProgramElfSpec simple_program_spec() {
  ProgramElfSpec spec;
  std::vector<uint8_t> text(0x100);
  for (size_t i = 0; i < text.size(); ++i) text[i] = static_cast<uint8_t>(i * 3 + 1);
  spec.segments.push_back({0x401000, text, 0});
  spec.segments.push_back({0x402000, std::vector<uint8_t>(0x80, 0xab), 0x3000});
  return spec;
}

}  // namespace thaw::vmm::testing
