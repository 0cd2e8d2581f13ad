// A minimal i8042 keyboard controller with no keyboard or mouse behind it.
// Its one real job is the reset line: Linux's `reboot=k` writes command 0xFE
// to port 0x64, which is how a guest ends the VM. The probe commands Linux
// sends answer at once so the driver never waits out its timeouts.
//
// Wiring: one device at kI8042Base spanning 0x60..0x64 (kI8042Length = 5),
// data at offset 0 and status/command at offset 4, as Firecracker does. The
// hole at 0x61..0x63 reads 0 and ignores writes; port 0x61 (PC speaker / NMI
// status) is handled by KVM's in-kernel PIT before it would reach userspace.
// Guests should boot with `i8042.noaux i8042.nomux i8042.nopnp
// i8042.dumbkbd`: bytes written to the (absent) keyboard are ignored.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "devices/bus_device.h"

namespace thaw::devices {

inline constexpr uint64_t kI8042Base = 0x60;
inline constexpr uint64_t kI8042Length = 5;
inline constexpr uint64_t kI8042DataOffset = 0;     // port 0x60
inline constexpr uint64_t kI8042CommandOffset = 4;  // port 0x64

struct I8042State {
  uint8_t control = 0x65;           // command byte: kbd IRQ, system flag, AUX off, translate
  uint8_t output = 0;               // byte waiting at the data port
  bool output_full = false;         // status OBF
  bool last_write_command = false;  // status bit 3: last write went to 0x64
  uint8_t pending_command = 0;      // a command waiting for its data byte (0x60), or 0

  bool operator==(const I8042State&) const = default;
};

class I8042 : public BusDevice {
 public:
  // `on_reset` runs when the guest pulses the CPU reset line. It runs without
  // the device's lock held, so it may save() or stop the VM.
  explicit I8042(std::function<void()> on_reset);

  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  I8042State save() const;
  // Throws StateError (base/errors.h) naming the bad field.
  void restore(const I8042State& state);

 private:
  uint8_t status() const;
  // Returns true when the command pulses the reset line.
  bool run_command(uint8_t command);
  void write_data(uint8_t value);
  void reply(uint8_t value);

  std::function<void()> on_reset_;
  mutable std::mutex mutex_;
  I8042State s_;
};

}  // namespace thaw::devices
