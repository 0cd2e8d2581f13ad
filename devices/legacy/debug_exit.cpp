#include "devices/legacy/debug_exit.h"

#include <algorithm>

namespace thaw::devices {

DebugExit::DebugExit(std::function<void(uint8_t code)> on_exit) : on_exit_(std::move(on_exit)) {}

void DebugExit::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
}

void DebugExit::write(uint64_t, std::span<const uint8_t> data) {
  if (data.empty()) return;
  const uint8_t code = data[0];
  {
    std::lock_guard lock(mutex_);
    s_.exited = true;
    s_.code = code;
  }
  // Outside the lock: the VMM may stop the VM or snapshot this device.
  if (on_exit_) on_exit_(code);
}

std::optional<uint8_t> DebugExit::exit_code() const {
  std::lock_guard lock(mutex_);
  if (!s_.exited) return std::nullopt;
  return s_.code;
}

DebugExitState DebugExit::save() const {
  std::lock_guard lock(mutex_);
  return s_;
}

// Every combination of fields is valid, so there is nothing to reject.
void DebugExit::restore(const DebugExitState& state) {
  std::lock_guard lock(mutex_);
  s_ = state;
}

}  // namespace thaw::devices
