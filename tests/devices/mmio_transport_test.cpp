#include "devices/virtio/mmio_transport.h"

#include "base/errors.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "virtio_test_support.h"

namespace thaw::devices {
namespace {

using test::CountingInterrupt;
using test::FakeDriver;
using test::FakeGuestMemory;
namespace r = virtio_mmio;

constexpr uint64_t kFeatureBit0 = 1;

// A backend with two queues and 8 bytes of config that records what the
// transport asks of it; the test drives its queues by hand.
class FakeBackend : public VirtioDevice {
 public:
  uint32_t device_id() const override { return 42; }
  uint64_t device_features() const override { return kVirtioFVersion1 | kFeatureBit0; }
  size_t queue_count() const override { return 2; }
  size_t config_size() const override { return 8; }
  void read_config(uint64_t offset, std::span<uint8_t> data) override {
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(0xa0 + offset + i);
  }
  void activate(VirtioQueueContext& context) override {
    ctx = &context;
    ++activations;
  }
  void reset() override {
    ctx = nullptr;
    ++resets;
  }
  void queue_notify(uint32_t index) override { notified.push_back(index); }

  VirtioQueueContext* ctx = nullptr;
  int activations = 0;
  int resets = 0;
  std::vector<uint32_t> notified;
};

constexpr uint64_t kRamBase = 0x100000;

class TransportTest : public ::testing::Test {
 protected:
  void bring_up() {
    ASSERT_TRUE(driver.negotiate(kVirtioFVersion1));
    uint64_t next = driver.setup_queue(0, 16, kRamBase);
    driver.setup_queue(1, 8, (next + 0xfff) & ~0xfffull);
    driver.driver_ok();
  }

  std::shared_ptr<FakeGuestMemory> mem = std::make_shared<FakeGuestMemory>(kRamBase, 0x100000);
  std::shared_ptr<FakeBackend> backend = std::make_shared<FakeBackend>();
  std::shared_ptr<CountingInterrupt> irq = std::make_shared<CountingInterrupt>();
  MmioTransport transport{backend, mem, irq};
  FakeDriver driver{transport, *mem};
};

TEST_F(TransportTest, IdentifiesAsAVersion2Device) {
  EXPECT_EQ(driver.read32(r::kMagicValue), 0x74726976u);
  EXPECT_EQ(driver.read32(r::kVersion), 2u);
  EXPECT_EQ(driver.read32(r::kDeviceId), 42u);
  EXPECT_EQ(driver.read32(r::kVendorId), kVirtioMmioVendorId);
  EXPECT_EQ(driver.read32(r::kStatus), 0u);
  EXPECT_EQ(driver.read32(r::kConfigGeneration), 0u);
  EXPECT_EQ(driver.read32(r::kShmLenLow), 0xffffffffu);  // no shared memory regions
}

TEST_F(TransportTest, FeaturesAreReadThroughTheSelector) {
  driver.write32(r::kDeviceFeaturesSel, 0);
  EXPECT_EQ(driver.read32(r::kDeviceFeatures), kFeatureBit0);
  driver.write32(r::kDeviceFeaturesSel, 1);
  EXPECT_EQ(driver.read32(r::kDeviceFeatures), 1u);  // VIRTIO_F_VERSION_1 is bit 32
  driver.write32(r::kDeviceFeaturesSel, 2);
  EXPECT_EQ(driver.read32(r::kDeviceFeatures), 0u);
}

TEST_F(TransportTest, FeaturesOkOnlyForASubsetWithVersion1) {
  EXPECT_TRUE(driver.negotiate(kVirtioFVersion1 | kFeatureBit0));
  EXPECT_FALSE(driver.negotiate(kVirtioFVersion1 | (1ull << 5)));  // not offered
  EXPECT_FALSE(driver.negotiate(kFeatureBit0));                     // legacy driver
  EXPECT_TRUE(driver.negotiate(kVirtioFVersion1));
  EXPECT_EQ(transport.save().driver_features, kVirtioFVersion1);
  // Frozen once FEATURES_OK is set.
  driver.write32(r::kDriverFeaturesSel, 0);
  driver.write32(r::kDriverFeatures, 1);
  EXPECT_EQ(transport.save().driver_features, kVirtioFVersion1);
}

TEST_F(TransportTest, DriverOkActivatesWithReadyQueues) {
  driver.write32(r::kQueueSel, 1);
  EXPECT_EQ(driver.read32(r::kQueueNumMax), 256u);
  driver.write32(r::kQueueSel, 2);
  EXPECT_EQ(driver.read32(r::kQueueNumMax), 0u);  // no such queue
  bring_up();
  EXPECT_EQ(backend->activations, 1);
  EXPECT_TRUE(transport.active());
  std::lock_guard lock(backend->mutex());
  ASSERT_NE(backend->ctx, nullptr);
  ASSERT_NE(backend->ctx->queue(0), nullptr);
  EXPECT_EQ(backend->ctx->queue(0)->size(), 16);
  EXPECT_EQ(backend->ctx->queue(1)->size(), 8);
  EXPECT_EQ(backend->ctx->queue(2), nullptr);
  EXPECT_EQ(backend->ctx->driver_features(), kVirtioFVersion1);
}

TEST_F(TransportTest, DriverOkWithoutFeaturesOkIsIgnored) {
  driver.write32(r::kStatus, kVirtioStatusAcknowledge | kVirtioStatusDriver | kVirtioStatusDriverOk);
  EXPECT_EQ(driver.read32(r::kStatus) & kVirtioStatusDriverOk, 0u);
  EXPECT_EQ(backend->activations, 0);
}

TEST_F(TransportTest, QueueNotifyReachesTheBackendOnlyWhenActive) {
  driver.notify(0);
  EXPECT_TRUE(backend->notified.empty());
  bring_up();
  driver.notify(1);
  driver.notify(7);  // no such queue
  EXPECT_EQ(backend->notified, std::vector<uint32_t>{1});
}

TEST_F(TransportTest, QueueLayoutIsFrozenOnceReady) {
  bring_up();
  driver.write32(r::kQueueSel, 0);
  driver.write32(r::kQueueNum, 4);
  driver.write32(r::kQueueDescLow, 0x1234);
  EXPECT_EQ(driver.read32(r::kQueueNum), 16u);
  EXPECT_EQ(driver.read32(r::kQueueDescLow), static_cast<uint32_t>(driver.queue(0).desc));
}

TEST_F(TransportTest, StatusZeroResetsEverything) {
  bring_up();
  driver.write32(r::kStatus, 0);
  EXPECT_EQ(backend->resets, 1);
  EXPECT_FALSE(transport.active());
  EXPECT_EQ(driver.read32(r::kStatus), 0u);
  driver.write32(r::kQueueSel, 0);
  EXPECT_EQ(driver.read32(r::kQueueReady), 0u);
  EXPECT_EQ(driver.read32(r::kQueueNum), 0u);
  EXPECT_EQ(transport.save().driver_features, 0u);
  // And it comes up again.
  bring_up();
  EXPECT_EQ(backend->activations, 2);
}

TEST_F(TransportTest, QueueOutsideRamSetsNeedsResetInsteadOfActivating) {
  ASSERT_TRUE(driver.negotiate(kVirtioFVersion1));
  driver.setup_queue(0, 16, kRamBase + 0x100000 - 0x80);  // runs off the end of RAM
  driver.driver_ok();
  EXPECT_EQ(backend->activations, 0);
  EXPECT_TRUE(driver.read32(r::kStatus) & kVirtioStatusNeedsReset);
  EXPECT_EQ(driver.read32(r::kInterruptStatus), kVirtioInterruptConfigChange);
  EXPECT_EQ(irq->count, 1);
}

TEST_F(TransportTest, NonPowerOfTwoQueueSetsNeedsReset) {
  ASSERT_TRUE(driver.negotiate(kVirtioFVersion1));
  driver.setup_queue(0, 12, kRamBase);
  driver.driver_ok();
  EXPECT_EQ(backend->activations, 0);
  EXPECT_TRUE(driver.read32(r::kStatus) & kVirtioStatusNeedsReset);
}

TEST_F(TransportTest, UsedBufferInterruptAndAck) {
  bring_up();
  {
    std::lock_guard lock(backend->mutex());
    backend->ctx->finish_batch(false);
  }
  EXPECT_EQ(irq->count, 0);
  {
    std::lock_guard lock(backend->mutex());
    backend->ctx->finish_batch(true);
    backend->ctx->finish_batch(true);  // every batch is an edge
  }
  EXPECT_EQ(irq->count, 2);
  EXPECT_EQ(driver.read32(r::kInterruptStatus), kVirtioInterruptUsedBuffer);
  driver.write32(r::kInterruptAck, kVirtioInterruptUsedBuffer);
  EXPECT_EQ(driver.read32(r::kInterruptStatus), 0u);
}

TEST_F(TransportTest, BrokenChainFoundByTheBackendSetsNeedsReset) {
  bring_up();
  driver.add_chain(0, {{0xdead'0000, 64, false}});  // not RAM
  {
    std::lock_guard lock(backend->mutex());
    EXPECT_FALSE(backend->ctx->queue(0)->pop());
    backend->ctx->finish_batch(false);
    EXPECT_TRUE(backend->ctx->broken());
  }
  EXPECT_TRUE(driver.read32(r::kStatus) & kVirtioStatusNeedsReset);
  EXPECT_TRUE(driver.read32(r::kInterruptStatus) & kVirtioInterruptConfigChange);
  // The driver's way out is a reset.
  driver.write32(r::kStatus, 0);
  EXPECT_EQ(driver.read32(r::kStatus), 0u);
}

TEST_F(TransportTest, ConfigSpaceTakesNarrowAccessesWithinItsSize) {
  uint8_t b = 0;
  transport.read(r::kConfig + 3, {&b, 1});
  EXPECT_EQ(b, 0xa3);
  uint64_t wide = 0;
  transport.read(r::kConfig, {reinterpret_cast<uint8_t*>(&wide), 8});
  EXPECT_EQ(wide, 0xa7a6a5a4a3a2a1a0ull);
  uint32_t past = 0x1234;
  transport.read(r::kConfig + 6, {reinterpret_cast<uint8_t*>(&past), 4});  // crosses the end
  EXPECT_EQ(past, 0u);
}

TEST_F(TransportTest, NarrowRegisterAccessesReadZeroAndWriteNothing) {
  uint16_t half = 0xffff;
  transport.read(r::kMagicValue, {reinterpret_cast<uint8_t*>(&half), 2});
  EXPECT_EQ(half, 0);
  uint8_t one = kVirtioStatusAcknowledge;
  transport.write(r::kStatus, {&one, 1});
  EXPECT_EQ(driver.read32(r::kStatus), 0u);
}

TEST_F(TransportTest, SaveRestoreRoundTripReactivates) {
  bring_up();
  driver.add_chain(0, {{kRamBase + 0x8000, 64, true}});
  {
    std::lock_guard lock(backend->mutex());
    auto chain = backend->ctx->queue(0)->pop();
    ASSERT_TRUE(chain);
    backend->ctx->queue(0)->push_used(chain->head, 10);
    backend->ctx->finish_batch(true);
  }
  driver.write32(r::kQueueSel, 1);
  VirtioMmioState saved = transport.save();
  EXPECT_EQ(saved.queues[0].next_avail, 1);
  EXPECT_EQ(saved.queues[0].next_used, 1);
  EXPECT_EQ(saved.interrupt_status, kVirtioInterruptUsedBuffer);
  EXPECT_EQ(saved.queue_sel, 1u);

  auto backend2 = std::make_shared<FakeBackend>();
  auto irq2 = std::make_shared<CountingInterrupt>();
  MmioTransport restored(backend2, mem, irq2);
  restored.restore(saved);
  EXPECT_EQ(restored.save(), saved);
  EXPECT_TRUE(restored.active());
  EXPECT_EQ(backend2->activations, 1);
  EXPECT_EQ(irq2->count, 0);
  restored.notify_pending();  // once the interrupt controller is restored
  EXPECT_EQ(irq2->count, 1);
  std::lock_guard lock(backend2->mutex());
  EXPECT_EQ(backend2->ctx->queue(0)->state().next_avail, 1);
}

TEST_F(TransportTest, RestoreOverAnActiveDeviceResetsTheBackendFirst) {
  bring_up();
  VirtioMmioState saved = transport.save();
  transport.restore(saved);
  EXPECT_EQ(backend->resets, 1);
  EXPECT_EQ(backend->activations, 2);
  transport.restore(VirtioMmioState{0, 0, 0, 0, 0, 0, 0, std::vector<VirtqueueState>(2)});
  EXPECT_EQ(backend->resets, 2);
  EXPECT_FALSE(transport.active());
}

TEST_F(TransportTest, RestoreRejectsBadState) {
  bring_up();
  const VirtioMmioState good = transport.save();
  auto rejects = [&](auto change) {
    VirtioMmioState s = good;
    change(s);
    EXPECT_THROW(transport.restore(s), thaw::StateError);
  };
  rejects([](auto& s) { s.status |= 0x10; });
  rejects([](auto& s) { s.status &= ~kVirtioStatusFeaturesOk; });  // DRIVER_OK without FEATURES_OK
  rejects([](auto& s) { s.driver_features |= 1ull << 7; });
  rejects([](auto& s) { s.driver_features = kFeatureBit0; });  // FEATURES_OK without VERSION_1
  rejects([](auto& s) { s.interrupt_status = 4; });
  rejects([](auto& s) { s.queues.pop_back(); });
  rejects([](auto& s) { s.queues[0].size = 1024; });
  rejects([](auto& s) { s.queues[0].size = 12; });
  rejects([](auto& s) { s.queues[1].used_addr = 0xfff0'0000; });
  rejects([](auto& s) { s.queues[1].next_avail = static_cast<uint16_t>(s.queues[1].next_used + 9); });
  // A rejected restore leaves the device as it was.
  EXPECT_EQ(transport.save(), good);
  EXPECT_TRUE(transport.active());
}

}  // namespace
}  // namespace thaw::devices
