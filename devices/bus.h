// An address space of devices: one Bus for port I/O, one for MMIO. Maps a
// guest address to the device covering it and the offset inside it.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "devices/bus_device.h"

namespace thaw::devices {

class Bus {
 public:
  explicit Bus(std::string name);  // "pio" / "mmio", used in messages

  // Registers `device` for [base, base + length). Throws std::invalid_argument
  // for a null device, a zero length, a range past the top of the 64-bit
  // space, or an overlap (the message names both devices and both ranges).
  //
  // Concurrency: insert() is for set-up only and must finish before any vCPU
  // thread starts calling read()/write(); starting those threads orders the
  // writes before the lookups, so the lookup path takes no lock. The same
  // device may be inserted at several ranges; it then sees offsets relative
  // to whichever base matched.
  void insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length,
              std::string device_name);

  // Dispatches an access of data.size() bytes at `addr` to the one device
  // covering all of [addr, addr + size). Returns false when no device does
  // (including an access straddling a device's end); a failed read leaves
  // all-ones in `data`, what the guest sees on real hardware for an empty
  // address. The caller decides whether to log.
  bool read(uint64_t addr, std::span<uint8_t> data) const;
  bool write(uint64_t addr, std::span<const uint8_t> data) const;

  // Name of the device covering `addr`, or empty; for diagnostics.
  std::string_view device_name_at(uint64_t addr) const;

  const std::string& name() const { return name_; }
  size_t device_count() const { return entries_.size(); }

 private:
  struct Entry {
    uint64_t base;
    uint64_t last;  // inclusive, so a range may end at 2^64 - 1 without overflow
    std::string name;
    std::shared_ptr<BusDevice> device;
  };

  // The entry covering [addr, addr + size), or nullptr.
  const Entry* find(uint64_t addr, uint64_t size) const;

  std::string name_;
  std::vector<Entry> entries_;  // sorted by base, non-overlapping
};

}  // namespace thaw::devices
