// The interface every emulated device offers to a bus: byte accesses at an
// offset from the device's base. Devices never see KVM; the VMM decodes the
// exit and the bus turns the guest address into (device, offset).
#pragma once

#include <cstdint>
#include <span>

namespace thaw::devices {

class BusDevice {
 public:
  virtual ~BusDevice() = default;

  // `offset` is relative to the device's base; data.size() is 1, 2, 4 or 8.
  // The bus guarantees [offset, offset + data.size()) lies inside the range
  // the device was inserted with. Multi-byte values are little-endian, as the
  // guest sees them on x86.
  virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
  virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

}  // namespace thaw::devices
