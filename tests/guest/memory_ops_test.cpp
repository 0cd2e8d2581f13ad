// The mini guest's memcpy, memmove and memset (guest/mini/memory_ops.S),
// assembled for the host under other names (tests/CMakeLists.txt). The
// function runtime moves a program's bytes with them, and memmove must
// handle a program that reads or writes a /tmp file from its own storage.
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

extern "C" {
void *thaw_mini_memcpy(void *dst, const void *src, size_t n);
void *thaw_mini_memmove(void *dst, const void *src, size_t n);
void *thaw_mini_memset(void *dst, int byte, size_t n);
}

namespace {

std::vector<uint8_t> counting(size_t n) {
  std::vector<uint8_t> v(n);
  std::iota(v.begin(), v.end(), uint8_t{1});
  return v;
}

// Every overlap there is in a 64-byte buffer, against libc's memmove.
TEST(GuestMemoryOps, MemmoveMatchesLibcForEveryOverlap) {
  for (size_t dst = 0; dst < 32; ++dst) {
    for (size_t src = 0; src < 32; ++src) {
      for (size_t n : {size_t{0}, size_t{1}, size_t{7}, size_t{32}}) {
        auto mine = counting(64), libc = counting(64);
        EXPECT_EQ(thaw_mini_memmove(mine.data() + dst, mine.data() + src, n), mine.data() + dst);
        std::memmove(libc.data() + dst, libc.data() + src, n);
        ASSERT_EQ(mine, libc) << "dst " << dst << " src " << src << " n " << n;
      }
    }
  }
}

TEST(GuestMemoryOps, MemmoveLeavesTheDirectionFlagClear) {
  auto buf = counting(16);
  thaw_mini_memmove(buf.data() + 4, buf.data(), 8);  // the backward path sets DF
  uint64_t flags = 0;
  asm volatile("pushfq; popq %0" : "=r"(flags));
  EXPECT_EQ(flags & (1u << 10), 0u);
  // And a forward copy after it still goes forward.
  auto a = counting(16), b = counting(16);
  thaw_mini_memcpy(a.data(), a.data() + 8, 8);
  std::memcpy(b.data(), b.data() + 8, 8);
  EXPECT_EQ(a, b);
}

TEST(GuestMemoryOps, MemcpyAndMemsetReturnTheirDestination) {
  std::vector<uint8_t> dst(10, 0), src = counting(10);
  EXPECT_EQ(thaw_mini_memcpy(dst.data(), src.data(), 10), dst.data());
  EXPECT_EQ(dst, src);
  EXPECT_EQ(thaw_mini_memset(dst.data() + 2, 0xab, 5), dst.data() + 2);
  EXPECT_EQ(dst[1], 2);
  EXPECT_EQ(dst[2], 0xab);
  EXPECT_EQ(dst[6], 0xab);
  EXPECT_EQ(dst[7], 8);
}

}  // namespace
