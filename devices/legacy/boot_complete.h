// The guest's "ready" signal: a one-byte write of 123 at offset 0 of an MMIO
// page (0xd0000000 in the VMM's wiring). The device measures the time since
// the VMM asked for the boot and tells the VMM, which decides whether to
// continue, pause (to snapshot) or stop the VM.
//
// A one-byte write at offset 8 of the same page is an exit code with the
// debug-exit port's meaning (0: done, EXIT_CODE_POWER_OFF, else a failure),
// for guests whose ring 3 ends the VM: a port needs the I/O permission
// bitmap, and under emulated SVM (nested-kvm) thaw-init's outb faulted in
// every restored clone though ioperm() had succeeded (most likely QEMU's
// bitmap check refusing the busy-TSS type KVM reports for TR), while a store
// to this page always exits.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>

#include "devices/bus_device.h"

namespace thaw::devices {

inline constexpr uint64_t kBootCompleteBase = 0xd000'0000;
inline constexpr uint64_t kBootCompleteLength = 4096;
inline constexpr uint8_t kBootCompleteValue = 123;
inline constexpr uint64_t kBootCompleteExitOffset = 8;

// The start instant is not saved: a steady_clock time means nothing in
// another process, so a restored device measures from its own constructor's.
struct BootCompleteState {
  uint64_t completions = 0;            // boot-complete writes seen
  uint64_t ignored_writes = 0;         // any other write
  int64_t last_since_request_ns = -1;  // -1 until the first completion

  bool operator==(const BootCompleteState&) const = default;
};

class BootComplete : public BusDevice {
 public:
  using Callback = std::function<void(std::chrono::nanoseconds since_request)>;
  using ExitCallback = std::function<void(uint8_t code)>;

  // Both callbacks run on the writing vCPU's thread without the device's
  // lock held, so they may save() this device, pause or stop the VM.
  BootComplete(std::chrono::steady_clock::time_point requested_at, Callback on_boot_complete,
               ExitCallback on_exit_code = {});

  void read(uint64_t offset, std::span<uint8_t> data) override;  // always 0
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  uint64_t completions() const;
  uint64_t ignored_writes() const;
  // Time from `requested_at` to the latest completion; never negative.
  std::optional<std::chrono::nanoseconds> last_since_request() const;

  BootCompleteState save() const;
  // Throws StateError (base/errors.h) naming the bad field.
  void restore(const BootCompleteState& state);

 private:
  const std::chrono::steady_clock::time_point requested_at_;
  Callback on_boot_complete_;
  ExitCallback on_exit_code_;
  mutable std::mutex mutex_;
  BootCompleteState s_;
};

}  // namespace thaw::devices
