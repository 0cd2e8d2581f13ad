// The CPUID cache file is untrusted: malformed images must be ignored.
#include "vmm/cpuid_cache.h"

#include <gtest/gtest.h>

#include <cstdlib>

namespace thaw::vmm {
namespace {

std::vector<kvm_cpuid_entry2> sample_entries(size_t n) {
  std::vector<kvm_cpuid_entry2> entries(n);
  for (size_t i = 0; i < n; ++i) {
    entries[i].function = static_cast<uint32_t>(i);
    entries[i].eax = static_cast<uint32_t>(0x1000 + i);
    entries[i].edx = 0xdeadbeef;
  }
  return entries;
}

TEST(CpuidCache, RoundTripsEntries) {
  auto entries = sample_entries(76);
  auto decoded = decode_cpuid_cache(encode_cpuid_cache(entries));
  ASSERT_TRUE(decoded.has_value());
  ASSERT_EQ(decoded->size(), entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ((*decoded)[i].function, entries[i].function);
    EXPECT_EQ((*decoded)[i].eax, entries[i].eax);
    EXPECT_EQ((*decoded)[i].edx, entries[i].edx);
  }
}

TEST(CpuidCache, RejectsMalformedImages) {
  auto image = encode_cpuid_cache(sample_entries(10));
  auto bad_magic = image;
  bad_magic[0] ^= 0xff;
  EXPECT_FALSE(decode_cpuid_cache(bad_magic).has_value());
  auto truncated = image;
  truncated.pop_back();
  EXPECT_FALSE(decode_cpuid_cache(truncated).has_value());
  auto longer = image;
  longer.push_back(0);
  EXPECT_FALSE(decode_cpuid_cache(longer).has_value());
  EXPECT_FALSE(decode_cpuid_cache(encode_cpuid_cache({})).has_value()) << "an empty list is not an answer";
  EXPECT_FALSE(decode_cpuid_cache(encode_cpuid_cache(sample_entries(300))).has_value()) << "over KVM's 256";
  EXPECT_FALSE(decode_cpuid_cache(std::vector<uint8_t>(5, 0)).has_value());
}

TEST(CpuidCache, KeyIsStableWithinOneBoot) {
  auto a = host_kvm_key();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a, host_kvm_key());
}

TEST(CpuidCache, CanBeTurnedOffAndRedirected) {
  ::setenv("THAW_CPUID_CACHE", "0", 1);
  EXPECT_EQ(default_cpuid_cache_dir(), "");
  ::unsetenv("THAW_CPUID_CACHE");
  ::setenv("THAW_CACHE_DIR", "/tmp/thaw-cache-test", 1);
  EXPECT_EQ(default_cpuid_cache_dir(), "/tmp/thaw-cache-test");
  ::unsetenv("THAW_CACHE_DIR");
}

}  // namespace
}  // namespace thaw::vmm
