// The split between a virtio transport and a device backend (kvmtool's
// virtio ops, Cloud Hypervisor's VirtioDevice): the transport owns the
// register file, feature negotiation and the queues' configuration; the
// backend owns what the device does with buffers.
//
// Locking: one mutex per device, VirtioDevice::mutex(). The transport holds
// it for every register access and calls the backend's virtual functions
// with it held. A backend that works on its own thread takes it before it
// touches a queue or the context, and releases it between batches.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>
#include <string>

#include "devices/virtio/guest_memory_access.h"
#include "devices/virtio/virtqueue.h"

namespace thaw::devices {

// Feature bits every thaw device offers (virtio 1.x, 6).
inline constexpr uint64_t kVirtioFVersion1 = 1ull << 32;

// Device status bits (2.1).
inline constexpr uint32_t kVirtioStatusAcknowledge = 0x01;
inline constexpr uint32_t kVirtioStatusDriver = 0x02;
inline constexpr uint32_t kVirtioStatusDriverOk = 0x04;
inline constexpr uint32_t kVirtioStatusFeaturesOk = 0x08;
inline constexpr uint32_t kVirtioStatusNeedsReset = 0x40;
inline constexpr uint32_t kVirtioStatusFailed = 0x80;
inline constexpr uint32_t kVirtioStatusMask = 0xcf;

// InterruptStatus bits (4.2.2).
inline constexpr uint32_t kVirtioInterruptUsedBuffer = 0x1;
inline constexpr uint32_t kVirtioInterruptConfigChange = 0x2;

// What an active backend reaches through its transport. Valid from
// activate() until reset(); every call needs the device mutex held.
class VirtioQueueContext {
 public:
  // The live queue `index`, or nullptr when the driver did not make it ready.
  virtual Virtqueue* queue(size_t index) = 0;
  virtual GuestMemoryAccess& memory() = 0;
  virtual uint64_t driver_features() const = 0;
  // Ends a batch of work: a queue that failed marks the device
  // DEVICE_NEEDS_RESET (with a configuration-change interrupt), and
  // `used_buffers` raises a used-buffer interrupt.
  virtual void finish_batch(bool used_buffers) = 0;
  // True once the device needs a reset: the backend stops processing.
  virtual bool broken() const = 0;

 protected:
  ~VirtioQueueContext() = default;
};

class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;

  virtual uint32_t device_id() const = 0;
  // Must include kVirtioFVersion1: thaw's transport is non-legacy only.
  virtual uint64_t device_features() const = 0;
  virtual size_t queue_count() const = 0;
  virtual uint16_t queue_max_size() const { return kVirtqMaxSize; }
  // Device-specific configuration space (at 0x100 of the MMIO window).
  virtual size_t config_size() const = 0;
  // [offset, offset + data.size()) lies inside config_size().
  virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write_config(uint64_t /*offset*/, std::span<const uint8_t> /*data*/) {}

  // DRIVER_OK: the queues are set up; `context` stays valid until reset().
  virtual void activate(VirtioQueueContext& context) = 0;
  // Status 0 written, or a restore replaces the state: forget the context
  // and every piece of work in flight.
  virtual void reset() = 0;
  // The driver wrote `index` to QueueNotify. Keep it cheap: the caller is a
  // vCPU thread (with an ioeventfd, KVM signals the device directly).
  virtual void queue_notify(uint32_t index) = 0;

  std::mutex& mutex() const { return mutex_; }

 private:
  mutable std::mutex mutex_;
};

}  // namespace thaw::devices
