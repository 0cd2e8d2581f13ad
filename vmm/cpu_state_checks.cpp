#include "vmm/cpu_state_checks.h"

#include <cstring>
#include <optional>

#include "base/hex_text.h"

namespace thaw::vmm {

namespace {

enum class Reg { kEax, kEbx, kEcx, kEdx };

std::optional<uint32_t> cpuid_reg(const VcpuState& s, uint32_t leaf, uint32_t index, Reg reg) {
  for (const auto& e : s.cpuid) {
    if (e.function != leaf || e.index != index) continue;
    switch (reg) {
      case Reg::kEax: return e.eax;
      case Reg::kEbx: return e.ebx;
      case Reg::kEcx: return e.ecx;
      case Reg::kEdx: return e.edx;
    }
  }
  return std::nullopt;
}

bool cpuid_has(const VcpuState& s, uint32_t leaf, uint32_t index, Reg reg, unsigned bit) {
  auto value = cpuid_reg(s, leaf, index, reg);
  return value && (*value >> bit) & 1;
}

// The XSAVE components CPUID leaf 0xD offers; nullopt when the leaf is
// absent (then nothing is checked against it).
std::optional<uint64_t> offered_xfeatures(const VcpuState& s) {
  auto lo = cpuid_reg(s, 0xd, 0, Reg::kEax);
  auto hi = cpuid_reg(s, 0xd, 0, Reg::kEdx);
  if (!lo || !hi) return std::nullopt;
  return uint64_t{*lo} | uint64_t{*hi} << 32;
}

// CR4 bits that need a CPUID feature (Intel SDM vol. 3 2.5, KVM's
// __cr4_reserved_bits): the bit, then the flag that offers it.
struct Cr4Feature {
  unsigned cr4_bit;
  const char* name;
  uint32_t leaf;
  Reg reg;
  unsigned cpuid_bit;
};
constexpr Cr4Feature kCr4Features[] = {
    {11, "UMIP", 7, Reg::kEcx, 2},      {12, "LA57", 7, Reg::kEcx, 16},    {13, "VMXE", 1, Reg::kEcx, 5},
    {14, "SMXE", 1, Reg::kEcx, 6},      {16, "FSGSBASE", 7, Reg::kEbx, 0}, {17, "PCIDE", 1, Reg::kEcx, 17},
    {18, "OSXSAVE", 1, Reg::kEcx, 26},  {20, "SMEP", 7, Reg::kEbx, 7},     {21, "SMAP", 7, Reg::kEbx, 20},
    {22, "PKE", 7, Reg::kEcx, 3},       {23, "CET", 7, Reg::kEcx, 7},      {24, "PKS", 7, Reg::kEcx, 31},
};
// Bit 15 and everything from bit 26 up (the upper half is checked in
// state_validation.cpp) are reserved.
constexpr uint64_t kCr4Reserved = (1ULL << 15) | (0xffffffffULL & ~((1ULL << 26) - 1));
constexpr uint64_t kCr4La57 = 1ULL << 12;

constexpr uint64_t kXcr0Sse = 1ULL << 1;
constexpr uint64_t kXcr0Ymm = 1ULL << 2;
constexpr uint64_t kXcr0Mpx = (1ULL << 3) | (1ULL << 4);
constexpr uint64_t kXcr0Avx512 = (1ULL << 5) | (1ULL << 6) | (1ULL << 7);

// The legacy region ends at 512; the header is XSTATE_BV, XCOMP_BV and 48
// reserved bytes. MXCSR sits at 24.
constexpr size_t kXsaveHeader = 512;
constexpr size_t kXsaveHeaderBytes = 64;
constexpr size_t kMxcsrOffset = 24;

uint64_t load_u64(const std::vector<uint8_t>& bytes, size_t at) {
  uint64_t v;
  std::memcpy(&v, bytes.data() + at, sizeof v);
  return v;
}

}  // namespace

std::string check_cpuid_entries(const VcpuState& s) {
  if (auto eax = cpuid_reg(s, 0x80000008, 0, Reg::kEax)) {
    const uint32_t vaddr_bits = (*eax >> 8) & 0xff;
    if (vaddr_bits != 0 && vaddr_bits != 48 && vaddr_bits != 57) {
      return "cpuid 0x80000008: a virtual-address width of " + std::to_string(vaddr_bits) +
             " bits (KVM takes 48 or 57)";
    }
  }
  return {};
}

std::string check_cr4_features(const VcpuState& s) {
  const uint64_t cr4 = s.sregs.cr4;
  if (uint64_t bad = cr4 & kCr4Reserved) return "sregs.cr4 " + hex(cr4) + " sets reserved bits " + hex(bad);
  for (const auto& f : kCr4Features) {
    if (((cr4 >> f.cr4_bit) & 1) && !cpuid_has(s, f.leaf, 0, f.reg, f.cpuid_bit)) {
      return "sregs.cr4 " + hex(cr4) + " sets " + f.name + " (bit " + std::to_string(f.cr4_bit) +
             "), which the vCPU's CPUID does not offer";
    }
  }
  return {};
}

std::string check_xcr0(const VcpuState& s) {
  const auto offered = offered_xfeatures(s);
  for (uint32_t i = 0; i < s.xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i) {
    if (s.xcrs.xcrs[i].xcr != 0) continue;  // state_validation.cpp names any other XCR
    const uint64_t xcr0 = s.xcrs.xcrs[i].value;
    const std::string shown = "xcrs: XCR0 " + hex(xcr0);
    if ((xcr0 & kXcr0Ymm) && !(xcr0 & kXcr0Sse)) return shown + " enables AVX state without SSE state";
    if ((xcr0 & kXcr0Avx512) != 0 && (xcr0 & kXcr0Avx512) != kXcr0Avx512) {
      return shown + " enables only part of AVX-512's state (bits 5-7 go together)";
    }
    if ((xcr0 & kXcr0Avx512) && !(xcr0 & kXcr0Ymm)) return shown + " enables AVX-512 state without AVX state";
    if ((xcr0 & kXcr0Mpx) != 0 && (xcr0 & kXcr0Mpx) != kXcr0Mpx) return shown + " enables one of MPX's two states";
    if (offered && (xcr0 & ~*offered)) {
      return shown + " enables " + hex(xcr0 & ~*offered) + ", which CPUID leaf 0xD does not offer";
    }
  }
  return {};
}

std::string check_xsave_header(const VcpuState& s) {
  if (s.xsave.size() < kXsaveHeader + kXsaveHeaderBytes) return {};  // no XSAVE area (or sized elsewhere)
  uint32_t mxcsr;
  std::memcpy(&mxcsr, s.xsave.data() + kMxcsrOffset, sizeof mxcsr);
  if (mxcsr >> 16) return "xsave: MXCSR " + hex(uint64_t{mxcsr}) + " sets reserved bits " + hex(uint64_t{mxcsr >> 16 << 16});
  const uint64_t xstate_bv = load_u64(s.xsave, kXsaveHeader);
  const uint64_t xcomp_bv = load_u64(s.xsave, kXsaveHeader + 8);
  if (xcomp_bv != 0) return "xsave: XCOMP_BV " + hex(xcomp_bv) + " is not 0 (KVM takes the standard format)";
  for (size_t at = kXsaveHeader + 16; at < kXsaveHeader + kXsaveHeaderBytes; ++at) {
    if (s.xsave[at] != 0) return "xsave: reserved header byte " + std::to_string(at) + " is not 0";
  }
  if (auto offered = offered_xfeatures(s); offered && (xstate_bv & ~*offered)) {
    return "xsave: XSTATE_BV " + hex(xstate_bv) + " holds " + hex(xstate_bv & ~*offered) +
           ", which CPUID leaf 0xD does not offer";
  }
  return {};
}

std::string check_canonical_msrs(const VcpuState& s) {
  const unsigned bits = (s.sregs.cr4 & kCr4La57) ? 57 : 48;
  for (const auto& m : s.msrs) {
    const char* name = nullptr;
    switch (m.index) {
      case 0xc0000100: name = "FS_BASE"; break;
      case 0xc0000101: name = "GS_BASE"; break;
      case 0xc0000102: name = "KERNEL_GS_BASE"; break;
      case 0xc0000082: name = "LSTAR"; break;
      case 0xc0000083: name = "CSTAR"; break;
      default: continue;
    }
    // Canonical: bits 63..(bits-1) all equal.
    const int64_t v = static_cast<int64_t>(m.data);
    const int shift = 64 - static_cast<int>(bits);
    if ((v << shift) >> shift != v) {
      return std::string("MSR ") + name + " (" + hex(m.index) + ") holds " + hex(m.data) + ", not a canonical " +
             std::to_string(bits) + "-bit address";
    }
  }
  return {};
}

}  // namespace thaw::vmm
