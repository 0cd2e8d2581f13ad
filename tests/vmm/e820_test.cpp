#include "vmm/x86_64/e820.h"

#include <gtest/gtest.h>

#include "synthetic_images.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;
constexpr uint32_t kRam = static_cast<uint32_t>(E820Type::kRam);
constexpr uint32_t kReserved = static_cast<uint32_t>(E820Type::kReserved);

void expect_entry(const E820Entry& e, uint64_t start, uint64_t end, uint32_t type) {
  EXPECT_EQ(e.addr, start);
  EXPECT_EQ(e.addr + e.size, end);
  EXPECT_EQ(e.type, type);
}

TEST(E820, MapFor128MiB) {
  auto map = build_e820(plan_ram_regions(128 * kMiB));
  ASSERT_EQ(map.size(), 3u);
  expect_entry(map[0], 0, 0x9fc00, kRam);
  expect_entry(map[1], 0x9fc00, 0x100000, kReserved);
  expect_entry(map[2], 0x100000, 128 * kMiB, kRam);
}

TEST(E820, MapFor5GiBLeavesTheMmioGapOut) {
  auto map = build_e820(plan_ram_regions(5 * kGiB));
  ASSERT_EQ(map.size(), 4u);
  expect_entry(map[2], 0x100000, 3 * kGiB, kRam);
  expect_entry(map[3], 4 * kGiB, 6 * kGiB, kRam);
  for (const auto& e : map) {
    bool overlaps_gap = e.addr < kMmioGapEnd && e.addr + e.size > kMmioGapStart;
    EXPECT_FALSE(overlaps_gap) << "entry at 0x" << std::hex << e.addr;
  }
  // The boot-complete register is in the gap, never RAM.
  for (const auto& e : map) EXPECT_FALSE(kBootCompleteMmioAddr >= e.addr && kBootCompleteMmioAddr < e.addr + e.size);
}

TEST(E820, EntriesAreSortedAndDisjoint) {
  auto map = build_e820(plan_ram_regions(5 * kGiB));
  for (size_t i = 1; i < map.size(); ++i) EXPECT_LE(map[i - 1].addr + map[i - 1].size, map[i].addr);
}

TEST(E820, RejectsRamTooSmallForTheBootLayout) {
  auto msg = testing::input_error_of([] { build_e820(plan_ram_regions(512 * 1024)); });
  EXPECT_CONTAINS(msg, "512 KiB");
  EXPECT_CONTAINS(msg, "at least");
  EXPECT_NO_THROW(build_e820(plan_ram_regions(kMinGuestRam)));
}

}  // namespace
}  // namespace thaw::vmm::x86
