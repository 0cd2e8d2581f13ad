// The virtio-mmio transport, version 2 (virtio 1.x, 4.2.2; no legacy
// interface): a 4 KiB register window on the MMIO bus that exposes any
// VirtioDevice backend. Registers are 32-bit; the device configuration
// space at 0x100 also takes 8- and 16-bit accesses.
//
// Activation happens when the driver sets DRIVER_OK with FEATURES_OK; every
// ready queue is checked against guest RAM first, and a queue that does not
// fit sets DEVICE_NEEDS_RESET instead. Writing 0 to Status resets the
// device. Interrupts are edges (InterruptNotifier) plus the InterruptStatus
// register the guest reads and acknowledges.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "devices/bus_device.h"
#include "devices/interrupt_line.h"
#include "devices/virtio/virtio_device.h"

namespace thaw::devices {

inline constexpr uint64_t kVirtioMmioWindow = 0x1000;
inline constexpr uint32_t kVirtioMmioMagic = 0x74726976;  // "virt"
inline constexpr uint32_t kVirtioMmioVersion = 2;
inline constexpr uint32_t kVirtioMmioVendorId = 0x57414854;  // "THAW"

// Register offsets (4.2.2, table "MMIO Device Register Layout").
namespace virtio_mmio {
inline constexpr uint64_t kMagicValue = 0x000;
inline constexpr uint64_t kVersion = 0x004;
inline constexpr uint64_t kDeviceId = 0x008;
inline constexpr uint64_t kVendorId = 0x00c;
inline constexpr uint64_t kDeviceFeatures = 0x010;
inline constexpr uint64_t kDeviceFeaturesSel = 0x014;
inline constexpr uint64_t kDriverFeatures = 0x020;
inline constexpr uint64_t kDriverFeaturesSel = 0x024;
inline constexpr uint64_t kQueueSel = 0x030;
inline constexpr uint64_t kQueueNumMax = 0x034;
inline constexpr uint64_t kQueueNum = 0x038;
inline constexpr uint64_t kQueueReady = 0x044;
inline constexpr uint64_t kQueueNotify = 0x050;
inline constexpr uint64_t kInterruptStatus = 0x060;
inline constexpr uint64_t kInterruptAck = 0x064;
inline constexpr uint64_t kStatus = 0x070;
inline constexpr uint64_t kQueueDescLow = 0x080;
inline constexpr uint64_t kQueueDescHigh = 0x084;
inline constexpr uint64_t kQueueDriverLow = 0x090;
inline constexpr uint64_t kQueueDriverHigh = 0x094;
inline constexpr uint64_t kQueueDeviceLow = 0x0a0;
inline constexpr uint64_t kQueueDeviceHigh = 0x0a4;
inline constexpr uint64_t kShmLenLow = 0x0b0;
inline constexpr uint64_t kShmLenHigh = 0x0b4;
inline constexpr uint64_t kShmBaseLow = 0x0b8;
inline constexpr uint64_t kShmBaseHigh = 0x0bc;
inline constexpr uint64_t kConfigGeneration = 0x0fc;
inline constexpr uint64_t kConfig = 0x100;
}  // namespace virtio_mmio

// Everything the guest can observe of the transport. While the device is
// active the queues' next_avail/next_used are the live ones.
struct VirtioMmioState {
  uint32_t status = 0;
  uint32_t device_features_sel = 0;
  uint32_t driver_features_sel = 0;
  uint64_t driver_features = 0;
  uint32_t queue_sel = 0;
  uint32_t interrupt_status = 0;
  uint32_t config_generation = 0;
  std::vector<VirtqueueState> queues;  // one per device queue

  bool operator==(const VirtioMmioState&) const = default;
};

class MmioTransport final : public BusDevice, private VirtioQueueContext {
 public:
  MmioTransport(std::shared_ptr<VirtioDevice> device, std::shared_ptr<GuestMemoryAccess> memory,
                std::shared_ptr<InterruptNotifier> irq);
  ~MmioTransport() override;
  MmioTransport(const MmioTransport&) = delete;
  MmioTransport& operator=(const MmioTransport&) = delete;

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  VirtioMmioState save() const;
  // Throws StateError (base/errors.h) naming the bad field (status bits, feature
  // bits the device does not offer, queue count, a ready queue that does not
  // fit guest RAM). On success the backend is reset, then activated again
  // when the state says DRIVER_OK.
  void restore(const VirtioMmioState& state);
  // Signals the interrupt once more if InterruptStatus is not 0, so a
  // restored guest cannot miss it. Call it after the interrupt controller's
  // state is restored: that would overwrite an edge sent before.
  void notify_pending();

  uint32_t status() const;
  bool active() const;
  VirtioDevice& device() { return *device_; }

 private:
  uint32_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint32_t value);
  void write_status(uint32_t value);
  void activate_locked();
  void reset_locked();
  void set_needs_reset();
  VirtqueueState* selected_queue();  // nullptr past the device's queues
  VirtioMmioState snapshot_locked() const;
  void check_state(const VirtioMmioState& state) const;

  // VirtioQueueContext, for the backend while active.
  Virtqueue* queue(size_t index) override;
  GuestMemoryAccess& memory() override { return *memory_; }
  uint64_t driver_features() const override { return s_.driver_features; }
  void finish_batch(bool used_buffers) override;
  bool broken() const override { return s_.status & kVirtioStatusNeedsReset; }

  std::shared_ptr<VirtioDevice> device_;
  std::shared_ptr<GuestMemoryAccess> memory_;
  std::shared_ptr<InterruptNotifier> irq_;

  // Guarded by device_->mutex().
  VirtioMmioState s_;
  bool active_ = false;
  std::vector<std::unique_ptr<Virtqueue>> live_;  // per queue while active; null if not ready
};

}  // namespace thaw::devices
