// The cache must hand back exactly what KVM says, and survive corruption.
#include <gtest/gtest.h>
#include <sched.h>

#include <filesystem>
#include <fstream>

#include "tests/integration/kvm_test_support.h"
#include "tests/temp_dir.h"
#include "vmm/cpuid_cache.h"

namespace thaw {
namespace {

bool same(const std::vector<kvm_cpuid_entry2>& a, const std::vector<kvm_cpuid_entry2>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(kvm_cpuid_entry2)) == 0;
}

TEST(CpuidCacheKvm, CachedAnswerEqualsKvmsAndCorruptionIsRecomputed) {
  THAW_REQUIRE_KVM();
  // On one CPU throughout: on PVM some entries (the calling CPU's APIC id)
  // differ between CPUs, and a move between two calls failed this test once.
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(sched_getcpu(), &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  testing::TempDir scratch("thaw-cpuid");
  // A cache directory that does not exist yet: the first call makes it.
  const std::filesystem::path dir = scratch / "cache";
  auto kvm = vmm::kvm::KvmSystem::open();
  auto direct = kvm.supported_cpuid();
  auto first = vmm::supported_cpuid_cached(kvm, dir.string());
  EXPECT_TRUE(same(direct, first));
  auto file = dir / ("cpuid-" + vmm::host_kvm_key());
  ASSERT_TRUE(std::filesystem::exists(file)) << "the first call stores the answer";
  std::ofstream(file, std::ios::binary | std::ios::trunc) << "garbage that is not a cache";
  auto after_corruption = vmm::supported_cpuid_cached(kvm, dir.string());
  EXPECT_TRUE(same(direct, after_corruption));
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_TRUE(vmm::decode_cpuid_cache(image).has_value()) << "a corrupt cache is rewritten";
}

}  // namespace
}  // namespace thaw
