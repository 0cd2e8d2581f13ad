// A split virtqueue (virtio 1.x, section 2.7): the descriptor table, the
// available ring the driver fills and the used ring the device fills, all in
// guest memory. Everything read from the guest is checked: a chain that
// leaves guest RAM, loops, or names a descriptor past the table puts the
// queue in a failed state (the transport then sets DEVICE_NEEDS_RESET)
// instead of crashing or hanging the host.
//
// Not thread-safe: the device's lock guards a queue (see virtio_device.h).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "devices/virtio/guest_memory_access.h"

namespace thaw::devices {

// Descriptor flags (struct virtq_desc).
inline constexpr uint16_t kVirtqDescFlagNext = 1;
inline constexpr uint16_t kVirtqDescFlagWrite = 2;
inline constexpr uint16_t kVirtqDescFlagIndirect = 4;

// The largest queue any thaw device offers; split rings allow 32768.
inline constexpr uint16_t kVirtqMaxSize = 256;

// Where a queue lives and how far the device got: what the transport saves
// and restores.
struct VirtqueueState {
  uint16_t size = 0;  // entries; a power of two once the driver set it
  bool ready = false;
  uint64_t desc_addr = 0;   // descriptor table, 16-byte aligned
  uint64_t avail_addr = 0;  // driver area (avail ring), 2-byte aligned
  uint64_t used_addr = 0;   // device area (used ring), 4-byte aligned
  uint16_t next_avail = 0;  // the avail ring index the device takes next
  uint16_t next_used = 0;   // the used ring index the device fills next

  bool operator==(const VirtqueueState&) const = default;
};

// One guest buffer of a chain.
struct DescriptorSegment {
  uint64_t addr = 0;
  uint32_t len = 0;
};

// A chain taken off the avail ring, already checked against guest RAM.
// Device-readable segments come first in the guest's order, then the
// device-writable ones. Zero-length descriptors are dropped.
struct DescriptorChain {
  uint16_t head = 0;
  std::vector<DescriptorSegment> readable;
  std::vector<DescriptorSegment> writable;

  uint64_t readable_bytes() const;
  uint64_t writable_bytes() const;
  // Copy from the readable segments starting at byte `offset` of their
  // concatenation; returns the bytes copied (short at the end of the chain).
  size_t read(GuestMemoryAccess& memory, uint64_t offset, std::span<uint8_t> out) const;
  // Copy into the writable segments starting at byte `offset`.
  size_t write(GuestMemoryAccess& memory, uint64_t offset, std::span<const uint8_t> in) const;
};

class Virtqueue {
 public:
  // Returns when `state` can be used with `memory`: size a power of two
  // from 1 to `max_size`, each ring aligned and inside one RAM region,
  // next_avail/next_used no further apart than the size. Otherwise throws
  // StateError (base/errors.h) saying which.
  static void check(GuestMemoryAccess& memory, const VirtqueueState& state, uint16_t max_size);

  // `state` must have passed check().
  Virtqueue(GuestMemoryAccess& memory, const VirtqueueState& state);

  // The next available chain, or nullopt when there is none or the queue
  // has failed (see failed()). A chain taken here must be given back with
  // push_used() before the device's lock is released, so a saved state
  // never has buffers in flight.
  std::optional<DescriptorChain> pop();
  // Gives the chain pop() just returned back to the avail ring, unused
  // (nothing was published yet): for a device that found it had nothing
  // to put in it after all.
  void undo_pop();
  // True when the driver has made a chain available that pop() would take.
  bool has_available();
  // How many chains pop() would take now (0 when the ring is unreadable).
  uint16_t available_count();
  // Returns chain `head` to the driver, saying how many bytes were written
  // into its writable segments.
  void push_used(uint16_t head, uint32_t written);

  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t size() const { return state_.size; }
  const VirtqueueState& state() const { return state_; }

 private:
  // The avail ring's idx, or nullopt (and failed) when it is not readable
  // or runs more than a queue's worth ahead of the device.
  std::optional<uint16_t> pending_count();
  void fail(std::string why);

  GuestMemoryAccess& memory_;
  VirtqueueState state_;
  std::string error_;
};

}  // namespace thaw::devices
