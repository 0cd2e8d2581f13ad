// The guest's "I am done" port at 0xf4, the port QEMU's isa-debug-exit uses
// (iobase=0xf4,iosize=0x04), so one guest ELF can end itself under thaw and
// under QEMU. A write passes its low byte to the VMM as an exit code: 0 means
// the guest finished cleanly, anything else is a guest failure code. (QEMU
// turns code c into process status 2c+1; thaw passes c itself.)
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "devices/bus_device.h"

namespace thaw::devices {

inline constexpr uint64_t kDebugExitBase = 0xf4;
inline constexpr uint64_t kDebugExitLength = 4;

struct DebugExitState {
  bool exited = false;  // a code has been written
  uint8_t code = 0;     // the latest code written

  bool operator==(const DebugExitState&) const = default;
};

class DebugExit : public BusDevice {
 public:
  // `on_exit` runs on the writing vCPU's thread without the device's lock
  // held; the VMM decides how to stop.
  explicit DebugExit(std::function<void(uint8_t code)> on_exit);

  void read(uint64_t offset, std::span<uint8_t> data) override;  // always 0
  // Any offset and width; wider writes pass their low byte (x86 is
  // little-endian, so `outl` of a small code works like `outb`).
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // The latest code written, if any.
  std::optional<uint8_t> exit_code() const;

  DebugExitState save() const;
  void restore(const DebugExitState& state);

 private:
  std::function<void(uint8_t)> on_exit_;
  mutable std::mutex mutex_;
  DebugExitState s_;
};

}  // namespace thaw::devices
