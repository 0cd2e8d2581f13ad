// Private memory per clone from smaps text.
#include "pool/memory_usage.h"

#include <gtest/gtest.h>

#include <vector>

namespace thaw::pool {
namespace {

constexpr const char* kSmaps =
    "7f0000000000-7f0008000000 rw-p 00000000 00:1a 1234                       /t/memory\n"
    "Size:             131072 kB\n"
    "Rss:                 400 kB\n"
    "Private_Clean:        40 kB\n"
    "Private_Dirty:       100 kB\n"
    "VmFlags: rd wr mr mw me ac\n"
    "7f0008000000-7f0008001000 rw-p 00000000 00:00 0\n"
    "Private_Dirty:         4 kB\n"
    "7f1000000000-7f1008000000 rw-p 00000000 00:1a 1234                       /t/memory\n"
    "Private_Clean:         0 kB\n"
    "Private_Dirty:         8 kB\n"
    "7f1008000000-7f100c000000 rw-p 08000000 00:1a 1234                       /t/memory\n"
    "Private_Dirty:        12 kB\n";

TEST(MemoryUsage, SumsPrivatePagesOfTheMappingsInEachRange) {
  std::vector<HostRange> ranges{{0x7f1000000000, 0x7f1010000000}, {0x7f0000000000, 0x7f0008000000}};
  auto bytes = private_bytes_in(kSmaps, ranges);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], (8 + 12) * 1024u) << "a mapping split in two VMAs counts whole";
  EXPECT_EQ(bytes[1], (40 + 100) * 1024u) << "the next mapping (not in a range) is not counted";
}

TEST(MemoryUsage, NoRangesOrGarbage) {
  EXPECT_TRUE(private_bytes_in(kSmaps, {}).empty());
  std::vector<HostRange> ranges{{0x1000, 0x2000}};
  EXPECT_EQ(private_bytes_in("garbage\n-\nPrivate_Dirty: x kB\n", ranges), std::vector<uint64_t>{0});
}

TEST(MemoryUsage, ReadsThisProcess) {
  std::string smaps = read_self_smaps();
  EXPECT_NE(smaps.find("Private_Dirty:"), std::string::npos);
}

}  // namespace
}  // namespace thaw::pool
