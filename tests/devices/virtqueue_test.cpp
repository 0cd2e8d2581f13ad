#include "devices/virtio/virtqueue.h"

#include <gtest/gtest.h>

#include "base/errors.h"
#include "virtio_test_support.h"

namespace thaw::devices {
namespace {

using test::FakeGuestMemory;

constexpr uint64_t kRamBase = 0x10000;
constexpr uint64_t kRamSize = 0x40000;

// A queue of 8 at the start of RAM; buffers live from kData on.
class VirtqueueTest : public ::testing::Test {
 protected:
  VirtqueueTest() {
    state.size = 8;
    state.ready = true;
    state.desc_addr = kRamBase;
    state.avail_addr = kRamBase + 0x100;
    state.used_addr = kRamBase + 0x200;
  }
  void desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    const uint64_t d = state.desc_addr + 16ull * i;
    mem.put<uint64_t>(d, addr);
    mem.put<uint32_t>(d + 8, len);
    mem.put<uint16_t>(d + 12, flags);
    mem.put<uint16_t>(d + 14, next);
  }
  // Puts `head` in the avail ring and publishes it.
  void offer(uint16_t head) {
    mem.put<uint16_t>(state.avail_addr + 4 + 2ull * (avail_idx % state.size), head);
    mem.put<uint16_t>(state.avail_addr + 2, ++avail_idx);
  }

  static constexpr uint64_t kData = kRamBase + 0x1000;
  FakeGuestMemory mem{kRamBase, kRamSize};
  VirtqueueState state;
  uint16_t avail_idx = 0;
};

TEST_F(VirtqueueTest, CheckAcceptsAWellPlacedQueue) { EXPECT_NO_THROW(Virtqueue::check(mem, state, 256)); }

TEST_F(VirtqueueTest, CheckRejectsBadSizesAndPlacement) {
  auto with = [&](auto change) {
    VirtqueueState s = state;
    change(s);
    try {
      Virtqueue::check(mem, s, 256);
    } catch (const StateError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_NE(with([](auto& s) { s.size = 0; }), "");
  EXPECT_NE(with([](auto& s) { s.size = 6; }), "");    // not a power of two
  EXPECT_NE(with([](auto& s) { s.size = 512; }), "");  // above the device's maximum
  EXPECT_NE(with([](auto& s) { s.desc_addr += 8; }), "");   // descriptors 16-byte aligned
  EXPECT_NE(with([](auto& s) { s.avail_addr += 1; }), "");  // avail 2-byte aligned
  EXPECT_NE(with([](auto& s) { s.used_addr += 2; }), "");   // used 4-byte aligned
  EXPECT_NE(with([](auto& s) { s.used_addr = kRamBase + kRamSize - 8; }), "");  // runs off RAM
  EXPECT_NE(with([](auto& s) { s.desc_addr = 0xd000'0000; }), "");
  EXPECT_NE(with([](auto& s) { s.next_avail = 20; }), "");  // 20 in flight in a queue of 8
  EXPECT_NE(with([](auto& s) { s.avail_addr = UINT64_MAX - 1; }), "");  // wraps the address space
}

TEST_F(VirtqueueTest, EmptyQueuePopsNothing) {
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.has_available());
  EXPECT_FALSE(q.pop());
  EXPECT_FALSE(q.failed());
}

TEST_F(VirtqueueTest, ChainSplitsReadableAndWritableAndCopiesAcrossSegments) {
  desc(3, kData, 4, kVirtqDescFlagNext, 5);
  desc(5, kData + 0x100, 3, kVirtqDescFlagNext, 1);
  desc(1, kData + 0x200, 0, kVirtqDescFlagNext | kVirtqDescFlagWrite, 2);  // empty: dropped
  desc(2, kData + 0x300, 6, kVirtqDescFlagWrite);
  const uint8_t a[4] = {1, 2, 3, 4}, b[3] = {5, 6, 7};
  std::memcpy(mem.slice(kData, 4).data(), a, 4);
  std::memcpy(mem.slice(kData + 0x100, 3).data(), b, 3);
  offer(3);

  Virtqueue q(mem, state);
  ASSERT_TRUE(q.has_available());
  auto chain = q.pop();
  ASSERT_TRUE(chain);
  EXPECT_EQ(chain->head, 3);
  ASSERT_EQ(chain->readable.size(), 2u);
  ASSERT_EQ(chain->writable.size(), 1u);
  EXPECT_EQ(chain->readable_bytes(), 7u);
  EXPECT_EQ(chain->writable_bytes(), 6u);

  uint8_t out[7] = {};
  EXPECT_EQ(chain->read(mem, 0, out), 7u);
  EXPECT_EQ(std::vector<uint8_t>(out, out + 7), (std::vector<uint8_t>{1, 2, 3, 4, 5, 6, 7}));
  uint8_t tail[5] = {};
  EXPECT_EQ(chain->read(mem, 3, tail), 4u);  // short at the end of the chain
  EXPECT_EQ(tail[0], 4);
  EXPECT_EQ(tail[3], 7);

  const uint8_t reply[8] = {9, 9, 9, 9, 9, 9, 9, 9};
  EXPECT_EQ(chain->write(mem, 0, reply), 6u);  // only 6 writable bytes
  EXPECT_EQ(mem.get<uint8_t>(kData + 0x305), 9);
  EXPECT_EQ(mem.get<uint8_t>(kData + 0x306), 0);

  q.push_used(chain->head, 6);
  EXPECT_EQ(mem.get<uint16_t>(state.used_addr + 2), 1);
  EXPECT_EQ(mem.get<uint32_t>(state.used_addr + 4), 3u);
  EXPECT_EQ(mem.get<uint32_t>(state.used_addr + 8), 6u);
  EXPECT_FALSE(q.pop());
  EXPECT_EQ(q.state().next_avail, 1);
  EXPECT_EQ(q.state().next_used, 1);
}

TEST_F(VirtqueueTest, IndicesWrapAt65536) {
  state.next_avail = state.next_used = 0xffff;
  avail_idx = 0xffff;
  Virtqueue q(mem, state);
  for (int i = 0; i < 3; ++i) {
    desc(static_cast<uint16_t>(i), kData, 16, 0);
    offer(static_cast<uint16_t>(i));
    auto chain = q.pop();
    ASSERT_TRUE(chain) << i;
    EXPECT_EQ(chain->head, i);
    q.push_used(chain->head, 0);
  }
  EXPECT_EQ(mem.get<uint16_t>(state.used_addr + 2), 2);
  EXPECT_FALSE(q.failed());
}

TEST_F(VirtqueueTest, UndoPopGivesTheChainBack) {
  desc(0, kData, 16, 0);
  offer(0);
  Virtqueue q(mem, state);
  ASSERT_TRUE(q.pop());
  EXPECT_FALSE(q.has_available());
  q.undo_pop();
  auto again = q.pop();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->head, 0);
}

TEST_F(VirtqueueTest, BufferOutsideRamFailsTheQueue) {
  desc(0, kRamBase + kRamSize - 8, 16, 0);  // straddles the end of RAM
  offer(0);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.failed());
  EXPECT_NE(q.error().find("not inside guest RAM"), std::string::npos) << q.error();
  // A failed queue stays failed and touches nothing more.
  q.push_used(0, 0);
  EXPECT_EQ(mem.get<uint16_t>(state.used_addr + 2), 0);
}

TEST_F(VirtqueueTest, HugeAddressDoesNotWrap) {
  desc(0, UINT64_MAX - 3, 16, 0);
  offer(0);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.failed());
}

TEST_F(VirtqueueTest, LoopingChainIsDetectedNotFollowedForever) {
  desc(0, kData, 16, kVirtqDescFlagNext, 1);
  desc(1, kData, 16, kVirtqDescFlagNext, 0);
  offer(0);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.failed());
  EXPECT_NE(q.error().find("loop"), std::string::npos) << q.error();
}

TEST_F(VirtqueueTest, NextPastTheTableFails) {
  desc(0, kData, 16, kVirtqDescFlagNext, 8);
  offer(0);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.failed());
}

TEST_F(VirtqueueTest, HeadPastTheTableFails) {
  offer(200);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_TRUE(q.failed());
}

TEST_F(VirtqueueTest, AvailIndexTooFarAheadFails) {
  mem.put<uint16_t>(state.avail_addr + 2, 9);  // 9 new entries in a ring of 8
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.has_available());
  EXPECT_TRUE(q.failed());
}

TEST_F(VirtqueueTest, IndirectDescriptorsAreRefused) {
  desc(0, kData, 32, kVirtqDescFlagIndirect);
  offer(0);
  Virtqueue q(mem, state);
  EXPECT_FALSE(q.pop());
  EXPECT_NE(q.error().find("indirect"), std::string::npos);
}

}  // namespace
}  // namespace thaw::devices
