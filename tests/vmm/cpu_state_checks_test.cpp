// The vCPU state checks that depend on the vCPU's own CPUID: each hostile
// value KVM would refuse with a bare EINVAL (issue 14 found 19 such kinds
// under kvm_amd) is named here before any ioctl, and a consistent state
// passes.
#include "vmm/cpu_state_checks.h"
#include "vmm/state_capture.h"

#include <gtest/gtest.h>

#include <cstring>

#include "tests/vmm/cpuid_leaf.h"

namespace thaw::vmm {
namespace {

constexpr auto leaf = ::thaw::vmm::testing::cpuid_leaf;

// Long mode with OSXSAVE, x87+SSE+AVX offered and enabled, an XSAVE area
// in the standard format: what a Linux guest leaves.
VcpuState consistent() {
  VcpuState s;
  s.cpuid = {leaf(1, 0, 0, 0, 1u << 26, 0), leaf(7, 0, 0, 1u << 0, 0, 0), leaf(0xd, 0, 0x7, 0, 0, 0),
             leaf(0x80000008, 0, 0x3028, 0, 0, 0)};
  s.sregs.cr4 = (1u << 5) | (1u << 18) | (1u << 16);  // PAE, OSXSAVE, FSGSBASE
  s.xcrs.nr_xcrs = 1;
  s.xcrs.xcrs[0].xcr = 0;
  s.xcrs.xcrs[0].value = 0x7;
  s.xsave.assign(4096, 0);
  uint32_t mxcsr = 0x1f80;
  std::memcpy(s.xsave.data() + 24, &mxcsr, sizeof mxcsr);
  uint64_t xstate_bv = 0x7;
  std::memcpy(s.xsave.data() + 512, &xstate_bv, sizeof xstate_bv);
  s.msrs = {{0xc0000100, 0, 0x00007f0000001000}, {0xc0000102, 0, 0xffff888000000000}, {0xc0000082, 0, 0xffffffff81000000}};
  return s;
}

std::string all_problems(const VcpuState& s) {
  for (auto check : {check_cpuid_entries, check_cr4_features, check_xcr0, check_xsave_header, check_canonical_msrs}) {
    if (auto why = check(s); !why.empty()) return why;
  }
  return {};
}

#define EXPECT_NAMES(message, needle)                                                          \
  do {                                                                                         \
    std::string m = (message);                                                                 \
    EXPECT_NE(m.find(needle), std::string::npos) << "want '" << (needle) << "' in: " << m; \
  } while (0)

TEST(CpuStateChecks, AConsistentStatePasses) {
  EXPECT_EQ(all_problems(consistent()), "");
  VcpuState no_leaves = consistent();
  no_leaves.cpuid.clear();  // nothing to check against: only the rules that need no CPUID
  no_leaves.sregs.cr4 = 1u << 5;
  EXPECT_EQ(all_problems(no_leaves), "");
}

TEST(CpuStateChecks, Cr4ReservedBitsAndFeaturesTheCpuidLacks) {
  auto s = consistent();
  s.sregs.cr4 |= 1u << 15;
  EXPECT_NAMES(check_cr4_features(s), "sets reserved bits 0x8000");
  s = consistent();
  s.sregs.cr4 |= 1u << 27;
  EXPECT_NAMES(check_cr4_features(s), "reserved bits");
  s = consistent();
  s.sregs.cr4 |= 1u << 20;  // SMEP; CPUID 7 EBX bit 7 is clear
  EXPECT_NAMES(check_cr4_features(s), "sets SMEP (bit 20), which the vCPU's CPUID does not offer");
  s = consistent();
  s.cpuid[0].ecx = 0;  // no XSAVE in CPUID 1, OSXSAVE still set
  EXPECT_NAMES(check_cr4_features(s), "OSXSAVE");
  s = consistent();
  s.sregs.cr4 |= 1u << 12;
  EXPECT_NAMES(check_cr4_features(s), "LA57");
}

TEST(CpuStateChecks, Xcr0Rules) {
  auto with_xcr0 = [](uint64_t value, uint32_t offered) {
    auto s = consistent();
    s.xcrs.xcrs[0].value = value;
    s.cpuid[2].eax = offered;
    return check_xcr0(s);
  };
  EXPECT_EQ(with_xcr0(0x7, 0xff), "");
  EXPECT_EQ(with_xcr0(0xe7, 0xff), "");  // AVX-512 whole, on AVX
  EXPECT_NAMES(with_xcr0(0x5, 0xff), "AVX state without SSE state");
  EXPECT_NAMES(with_xcr0(0x27, 0xff), "only part of AVX-512");
  EXPECT_NAMES(with_xcr0(0xe3, 0xff), "AVX-512 state without AVX state");
  EXPECT_NAMES(with_xcr0(0xf, 0xff), "one of MPX's two states");
  EXPECT_NAMES(with_xcr0(0x7, 0x3), "enables 0x4, which CPUID leaf 0xD does not offer");
}

TEST(CpuStateChecks, XsaveHeaderAndMxcsr) {
  auto s = consistent();
  uint64_t xcomp = 1ULL << 63;
  std::memcpy(s.xsave.data() + 520, &xcomp, sizeof xcomp);
  EXPECT_NAMES(check_xsave_header(s), "XCOMP_BV 0x8000000000000000 is not 0");
  s = consistent();
  s.xsave[560] = 1;
  EXPECT_NAMES(check_xsave_header(s), "reserved header byte 560");
  s = consistent();
  uint64_t xstate_bv = 0x207;
  std::memcpy(s.xsave.data() + 512, &xstate_bv, sizeof xstate_bv);
  EXPECT_NAMES(check_xsave_header(s), "holds 0x200, which CPUID leaf 0xD does not offer");
  s = consistent();
  uint32_t mxcsr = 0x11f80;
  std::memcpy(s.xsave.data() + 24, &mxcsr, sizeof mxcsr);
  EXPECT_NAMES(check_xsave_header(s), "MXCSR 0x11f80 sets reserved bits 0x10000");
  s = consistent();
  s.xsave.clear();  // the FPU path: no header to check
  EXPECT_EQ(check_xsave_header(s), "");
}

TEST(CpuStateChecks, NonCanonicalBasesAndSyscallTargets) {
  auto s = consistent();
  s.msrs[0].data = 0x0000800000000000;  // FS_BASE just past the lower half
  EXPECT_NAMES(check_canonical_msrs(s), "MSR FS_BASE (0xc0000100) holds 0x800000000000, not a canonical 48-bit");
  s = consistent();
  s.msrs[2].data = 0x8000000000000000;
  EXPECT_NAMES(check_canonical_msrs(s), "LSTAR");
  // With five-level paging the same register may hold a 57-bit address.
  s = consistent();
  s.msrs[0].data = 0x00ff000000000000;
  EXPECT_NAMES(check_canonical_msrs(s), "48-bit");
  s.sregs.cr4 |= 1u << 12;
  EXPECT_EQ(check_canonical_msrs(s), "");
}

TEST(CpuStateChecks, AVirtualAddressWidthKvmDoesNotTake) {
  auto s = consistent();
  s.cpuid[3].eax = 0x2c28;  // 44-bit virtual addresses
  EXPECT_NAMES(check_cpuid_entries(s), "virtual-address width of 44 bits");
  s.cpuid[3].eax = 0x3928;  // 57
  EXPECT_EQ(check_cpuid_entries(s), "");
}

// Restore asks KVM_KVMCLOCK_CTRL only of a guest that turned kvmclock on:
// the enable bit of either system-time MSR, not the MSR's mere presence.
TEST(GuestEnabledKvmclock, OnlyTheEnableBitOfASystemTimeMsrCounts) {
  auto msr = [](uint32_t index, uint64_t data) {
    kvm_msr_entry e{};
    e.index = index;
    e.data = data;
    return e;
  };
  EXPECT_FALSE(guest_enabled_kvmclock({}));
  EXPECT_FALSE(guest_enabled_kvmclock({msr(0x4b564d01, 0), msr(0x12, 0x1000)}));  // saved, never enabled
  EXPECT_TRUE(guest_enabled_kvmclock({msr(0x10, 1), msr(0x4b564d01, 0x1234001)}));
  EXPECT_TRUE(guest_enabled_kvmclock({msr(0x12, 0x5001)}));                     // the pre-2.6.35 MSR
  EXPECT_FALSE(guest_enabled_kvmclock({msr(0x4b564d00, 1), msr(0x4b564d02, 1)}));  // other KVM MSRs
}

}  // namespace
}  // namespace thaw::vmm
