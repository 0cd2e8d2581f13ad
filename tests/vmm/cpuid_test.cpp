#include "vmm/x86_64/cpuid.h"

#include <gtest/gtest.h>

#include <vector>

#include "tests/vmm/cpuid_leaf.h"

namespace thaw::vmm::x86 {
namespace {

constexpr auto leaf = ::thaw::vmm::testing::cpuid_leaf;

// A host-like supported list: leaf 1 with CLFLUSH size 8 and host APIC ID 7,
// four caches in leaf 4, leaf 6 with turbo/HWP/ARAT/EPB, topology leaves.
std::vector<kvm_cpuid_entry2> supported() {
  return {
      leaf(0x0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),
      leaf(0x1, 0, 0x000906ea, 0x07100800, 0x81202000, 0x178bfbff),
      leaf(0x4, 0, 0x1c004121, 0x01c0003f, 0x3f, 0),  // L1d
      leaf(0x4, 1, 0x1c004122, 0x01c0003f, 0x3f, 0),  // L1i
      leaf(0x4, 2, 0x1c004143, 0x00c0003f, 0x3ff, 0),  // L2
      leaf(0x4, 3, 0x1c03c163, 0x02c0003f, 0x3fff, 6),  // L3, shared by 16 threads on the host
      leaf(0x4, 4, 0, 0, 0, 0),
      leaf(0x6, 0, 0x0000'0f86, 0, 0x9, 0),  // turbo, ARAT, HWP bits; ECX: MPERF, EPB
      leaf(0xb, 0, 0x1, 0x2, 0x100, 7),
      leaf(0xb, 1, 0x4, 0x10, 0x201, 7),
      leaf(0xb, 2, 0, 0, 0x2, 7),
      leaf(0x1f, 0, 0x1, 0x2, 0x100, 7),
      leaf(0x1f, 1, 0x4, 0x10, 0x201, 7),
      leaf(0x8000'0001, 0, 0, 0, 0x121, 0x2c100800),
  };
}

const kvm_cpuid_entry2& find(const std::vector<kvm_cpuid_entry2>& v, uint32_t f, uint32_t i = 0) {
  for (const auto& e : v)
    if (e.function == f && e.index == i) return e;
  throw std::runtime_error("leaf not found");
}

TEST(Cpuid, Leaf1CarriesApicIdCountAndHypervisorBit) {
  auto v = supported();
  configure_cpuid(v, 3, 4);
  const auto& l1 = find(v, 1);
  EXPECT_EQ(l1.ebx >> 24, 3u) << "APIC ID";
  EXPECT_EQ((l1.ebx >> 16) & 0xff, 4u) << "logical processor count";
  EXPECT_EQ(l1.ebx & 0xffff, 0x0800u) << "CLFLUSH size and brand index kept";
  EXPECT_NE(l1.edx & kLeaf1EdxHtt, 0u);
  EXPECT_NE(l1.ecx & kLeaf1EcxHypervisor, 0u);
  EXPECT_EQ(l1.eax, 0x000906eau);
}

TEST(Cpuid, EachVcpuGetsItsOwnApicId) {
  for (unsigned i = 0; i < 8; ++i) {
    auto v = supported();
    configure_cpuid(v, i, 8);
    EXPECT_EQ(find(v, 1).ebx >> 24, i);
    EXPECT_EQ(find(v, 0xb, 0).edx, i);
    EXPECT_EQ(find(v, 0xb, 1).edx, i);
    EXPECT_EQ(find(v, 0xb, 2).edx, i);
    EXPECT_EQ(find(v, 0x1f, 1).edx, i);
  }
}

TEST(Cpuid, SingleVcpuHasNoHtt) {
  auto v = supported();
  configure_cpuid(v, 0, 1);
  EXPECT_EQ(find(v, 1).edx & kLeaf1EdxHtt, 0u);
  EXPECT_EQ((find(v, 1).ebx >> 16) & 0xff, 1u);
  EXPECT_EQ(find(v, 1).ebx >> 24, 0u);
}

TEST(Cpuid, TopologyLeavesDescribeOnePackageOfCores) {
  auto v = supported();
  configure_cpuid(v, 2, 6);
  for (uint32_t f : {0xbu, 0x1fu}) {
    const auto& smt = find(v, f, 0);
    EXPECT_EQ(smt.eax & 0x1f, 0u);
    EXPECT_EQ(smt.ebx & 0xffff, 1u);
    EXPECT_EQ((smt.ecx >> 8) & 0xff, kTopologyLevelSmt);
    const auto& core = find(v, f, 1);
    EXPECT_EQ(core.eax & 0x1f, 3u) << "6 cores need 3 APIC ID bits";
    EXPECT_EQ(core.ebx & 0xffff, 6u);
    EXPECT_EQ((core.ecx >> 8) & 0xff, kTopologyLevelCore);
    EXPECT_EQ(core.ecx & 0xff, 1u);
  }
  EXPECT_EQ((find(v, 0xb, 2).ecx >> 8) & 0xff, kTopologyLevelInvalid);
}

TEST(Cpuid, CacheLeafCountsCoresAndSharing) {
  auto v = supported();
  configure_cpuid(v, 0, 4);
  for (uint32_t sub = 0; sub < 4; ++sub) EXPECT_EQ(find(v, 4, sub).eax >> 26, 3u) << "subleaf " << sub;
  EXPECT_EQ((find(v, 4, 0).eax >> 14) & 0xfff, 0u) << "L1 is per core";
  EXPECT_EQ((find(v, 4, 2).eax >> 14) & 0xfff, 0u) << "L2 is per core";
  EXPECT_EQ((find(v, 4, 3).eax >> 14) & 0xfff, 3u) << "L3 is shared by all 4";
  EXPECT_EQ(find(v, 4, 3).eax & 0x3fff, 0x0163u) << "type and level kept";
  EXPECT_EQ(find(v, 4, 4).eax, 0u) << "terminator untouched";
}

TEST(Cpuid, PowerLeafDropsHostOnlyFeatures) {
  auto v = supported();
  configure_cpuid(v, 0, 1);
  const auto& l6 = find(v, 6);
  EXPECT_EQ(l6.eax & 0x2, 0u) << "turbo";
  EXPECT_EQ(l6.eax & (0x1fu << 7), 0u) << "HWP";
  EXPECT_EQ(l6.eax & 0x4, 0x4u) << "ARAT kept";
  EXPECT_EQ(l6.ecx & 0x8, 0u) << "energy bias";
  EXPECT_EQ(l6.ecx & 0x1, 0x1u) << "MPERF/APERF bit kept";
}

TEST(Cpuid, OtherLeavesUntouched) {
  auto v = supported();
  auto before = v;
  configure_cpuid(v, 1, 2);
  EXPECT_EQ(find(v, 0).ebx, find(before, 0).ebx);
  EXPECT_EQ(find(v, 0x8000'0001).edx, find(before, 0x8000'0001).edx);
}

}  // namespace
}  // namespace thaw::vmm::x86
