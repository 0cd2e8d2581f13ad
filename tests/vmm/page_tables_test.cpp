#include "vmm/x86_64/page_tables.h"

#include <gtest/gtest.h>

#include <optional>

#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {
namespace {

// Translates `va` the way the MMU does in 4-level paging, stopping at a
// 2 MiB or 1 GiB leaf; nullopt where an entry is not present.
std::optional<uint64_t> translate(GuestMemory& mem, uint64_t cr3, uint64_t va, bool* writable = nullptr) {
  uint64_t table = cr3 & kPteAddrMask;
  bool rw = true;
  for (int level = 4; level >= 1; --level) {
    unsigned shift = 12 + 9 * (level - 1);
    uint64_t index = (va >> shift) & 0x1ff;
    auto entry = mem.read_obj<uint64_t>(GuestAddress(table + index * 8));
    if ((entry & kPtePresent) == 0) return std::nullopt;
    rw = rw && (entry & kPteWritable);
    bool leaf = level == 1 || ((level == 2 || level == 3) && (entry & kPtePageSize));
    if (leaf) {
      if (writable) *writable = rw;
      uint64_t page_mask = (1ull << shift) - 1;
      return (entry & kPteAddrMask & ~page_mask) | (va & page_mask);
    }
    table = entry & kPteAddrMask;
  }
  return std::nullopt;
}

class PageTablesTest : public ::testing::Test {
 protected:
  GuestMemory mem = GuestMemory::create(128 << 20);
  uint64_t cr3 = 0;
  void SetUp() override {
    // Garbage where the tables go, so every entry must be written.
    std::memset(mem.host_base() + kPml4Addr, 0xff, kPageTablesEnd - kPml4Addr);
    cr3 = write_identity_page_tables(mem);
  }
};

TEST_F(PageTablesTest, Cr3IsThePml4) { EXPECT_EQ(cr3, kPml4Addr); }

TEST_F(PageTablesTest, IdentityMapsTheFirstFourGiB) {
  for (uint64_t va : {0x0ull, 0x7000ull, 0x100000ull, 0x1234567ull, 0x7ff'ffffull, 0xbfff'ffffull,
                      0xc000'0000ull, 0xd000'0000ull, 0xfec0'0000ull, 0xffff'ffffull}) {
    bool writable = false;
    auto pa = translate(mem, cr3, va, &writable);
    ASSERT_TRUE(pa.has_value()) << std::hex << va;
    EXPECT_EQ(*pa, va) << std::hex << va;
    EXPECT_TRUE(writable) << std::hex << va;
  }
}

TEST_F(PageTablesTest, NothingAboveFourGiB) {
  EXPECT_FALSE(translate(mem, cr3, 0x1'0000'0000ull).has_value());
  EXPECT_FALSE(translate(mem, cr3, 0x80'0000'0000ull).has_value());  // second PML4 entry
}

TEST_F(PageTablesTest, UsesTwoMiBPages) {
  auto pd_entry = mem.read_obj<uint64_t>(GuestAddress(kPdAddr + 3 * kPageSize + 0x80 * 8));  // 0xd0000000
  EXPECT_EQ(pd_entry & kPtePageSize, kPtePageSize);
  EXPECT_EQ(pd_entry & kPteAddrMask, 0xd000'0000u);
}

}  // namespace
}  // namespace thaw::vmm::x86
