// brk/mmap/munmap/mremap bookkeeping of the function runtime.
#include <gtest/gtest.h>

#include <cstring>

#include "runtime_fixture.h"

namespace thaw_guest_test {
namespace {

constexpr uint64_t kMmap = 9, kMunmap = 11, kBrk = 12, kMremap = 25, kMadvise = 28;
constexpr uint64_t PROT_RW = 3, MAP_PRIVATE_ANON = 0x22, MAP_FIXED = 0x10;

TEST_F(RuntimeTest, BrkGrowsZeroedAndStopsAtMappings) {
  EXPECT_EQ(sys(kBrk, 0), static_cast<int64_t>(kBrkStart));
  EXPECT_EQ(sys(kBrk, kBrkStart + 0x3000), static_cast<int64_t>(kBrkStart + 0x3000));
  std::memset(at(kBrkStart), 0x5a, 0x3000);
  EXPECT_EQ(sys(kBrk, kBrkStart + 0x1000), static_cast<int64_t>(kBrkStart + 0x1000));
  EXPECT_EQ(sys(kBrk, kBrkStart + 0x3000), static_cast<int64_t>(kBrkStart + 0x3000));
  EXPECT_EQ(at(kBrkStart)[0], 0x5a);       // kept below the old break
  EXPECT_EQ(at(kBrkStart + 0x1000)[0], 0);  // given back and taken again: zero
  EXPECT_EQ(at(kBrkStart + 0x2fff)[0], 0);
  EXPECT_EQ(sys(kBrk, kBrkStart - 1), static_cast<int64_t>(kBrkStart + 0x3000));  // below the start: refused
  // A fixed mapping above bounds the break.
  ASSERT_EQ(sys(kMmap, kBrkStart + 0x10000, 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED, ~0ull, 0),
            static_cast<int64_t>(kBrkStart + 0x10000));
  EXPECT_EQ(sys(kBrk, kBrkStart + 0x20000), static_cast<int64_t>(kBrkStart + 0x3000));
  EXPECT_EQ(sys(kBrk, kBrkStart + 0x10000), static_cast<int64_t>(kBrkStart + 0x10000));
}

// The break never reaches past mmap_top, not even when the only mapping is
// a MAP_FIXED one in the stack (it bounded the break alone, which then grew
// over the stack; fuzz_guest_syscalls).
TEST_F(RuntimeTest, AMappingInTheStackDoesNotLetTheBreakPassMmapTop) {
  const uint64_t in_stack = kStackTop - 0x10000;
  ASSERT_EQ(sys(kMmap, in_stack, 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED, ~0ull, 0),
            static_cast<int64_t>(in_stack));
  EXPECT_EQ(sys(kBrk, in_stack - 0x1000), static_cast<int64_t>(kBrkStart)) << "refused: past mmap_top";
  EXPECT_EQ(sys(kBrk, kStackBottom), static_cast<int64_t>(kStackBottom)) << "up to mmap_top is fine";
}

TEST_F(RuntimeTest, MmapCarvesDownFromMmapTopAndReusesUnmappedRanges) {
  int64_t a = sys(kMmap, 0, 0x2000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  int64_t b = sys(kMmap, 0, 100, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  EXPECT_EQ(a, static_cast<int64_t>(kStackBottom - 0x2000));
  EXPECT_EQ(b, a - 0x1000);
  std::memset(at(static_cast<uint64_t>(a)), 0x77, 0x2000);
  EXPECT_EQ(sys(kMunmap, static_cast<uint64_t>(a), 0x2000), 0);
  int64_t c = sys(kMmap, 0, 0x1000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  EXPECT_EQ(c, a + 0x1000);  // the highest free range
  EXPECT_EQ(at(static_cast<uint64_t>(c))[0], 0);  // used before: zeroed
  EXPECT_EQ(at(static_cast<uint64_t>(a))[0], 0x77);  // still free, not touched
  EXPECT_EQ(rt->mapping_count, 2u);  // b, then c with a free page between
  EXPECT_EQ(sys(kMunmap, static_cast<uint64_t>(a) + 1, 0x1000), -PERR_INVAL);
  EXPECT_EQ(sys(kMmap, 0, 0, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0), -PERR_INVAL);
  EXPECT_EQ(sys(kMmap, 0, kStackTop, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0), -PERR_NOMEM);
  EXPECT_EQ(sys(kMmap, 0x100000, 0x1000, PROT_RW, MAP_PRIVATE_ANON | MAP_FIXED, ~0ull, 0), -PERR_INVAL);
}

TEST_F(RuntimeTest, MunmapInTheMiddleSplitsAMapping) {
  int64_t a = sys(kMmap, 0, 0x3000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  ASSERT_GT(a, 0);
  EXPECT_EQ(sys(kMunmap, static_cast<uint64_t>(a) + 0x1000, 0x1000), 0);
  ASSERT_EQ(rt->mapping_count, 2u);
  EXPECT_EQ(rt->mappings[0].end, static_cast<uint64_t>(a) + 0x1000);
  EXPECT_EQ(rt->mappings[1].start, static_cast<uint64_t>(a) + 0x2000);
  EXPECT_EQ(sys(kMmap, 0, 0x1000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0), a + 0x1000);  // fills the hole
}

TEST_F(RuntimeTest, FileMappingsCopyTheFile) {
  int64_t fd = open("/etc/hello.txt");
  int64_t m = sys(kMmap, 0, 0x1000, 1, 2 /* MAP_PRIVATE */, static_cast<uint64_t>(fd), 0);
  ASSERT_GT(m, 0);
  EXPECT_EQ(get(static_cast<uint64_t>(m), 14), std::string("hello, world\n\0", 14));
  EXPECT_EQ(sys(kMmap, 0, 0x1000, 1, 2, 77, 0), -PERR_BADF);
}

TEST_F(RuntimeTest, MremapGrowsInPlaceOrMoves) {
  int64_t a = sys(kMmap, 0, 0x1000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  int64_t b = sys(kMmap, 0, 0x1000, PROT_RW, MAP_PRIVATE_ANON, ~0ull, 0);
  at(static_cast<uint64_t>(b))[5] = 9;
  // b cannot grow into a: without MREMAP_MAYMOVE that fails, with it b moves.
  EXPECT_EQ(sys(kMremap, static_cast<uint64_t>(b), 0x1000, 0x2000, 0), -PERR_NOMEM);
  int64_t moved = sys(kMremap, static_cast<uint64_t>(b), 0x1000, 0x3000, 1);
  ASSERT_GT(moved, 0);
  EXPECT_NE(moved, b);
  EXPECT_EQ(at(static_cast<uint64_t>(moved))[5], 9);
  EXPECT_EQ(sys(kMremap, static_cast<uint64_t>(moved), 0x3000, 0x1000, 0), moved);  // shrink in place
  (void)a;
  EXPECT_EQ(sys(kMadvise, static_cast<uint64_t>(moved), 0x1000, 4), 0);
  EXPECT_EQ(at(static_cast<uint64_t>(moved))[5], 0);  // MADV_DONTNEED: reads as zero
}

}  // namespace
}  // namespace thaw_guest_test
