#include "devices/legacy/boot_complete.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "base/errors.h"

namespace thaw::devices {

BootComplete::BootComplete(std::chrono::steady_clock::time_point requested_at, Callback on_boot_complete,
                           ExitCallback on_exit_code)
    : requested_at_(requested_at),
      on_boot_complete_(std::move(on_boot_complete)),
      on_exit_code_(std::move(on_exit_code)) {}

void BootComplete::read(uint64_t, std::span<uint8_t> data) {
  std::fill(data.begin(), data.end(), uint8_t{0});
}

void BootComplete::write(uint64_t offset, std::span<const uint8_t> data) {
  if (offset == kBootCompleteExitOffset && data.size() == 1 && on_exit_code_) {
    on_exit_code_(data[0]);
    return;
  }
  // Take the time first: the lock is not part of the guest's boot.
  const auto now = std::chrono::steady_clock::now();
  const bool signal = offset == 0 && data.size() == 1 && data[0] == kBootCompleteValue;
  // A start instant in the future (a caller's mistake) reads as zero rather
  // than as a negative boot time.
  const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - requested_at_);
  const auto since = std::max(std::chrono::nanoseconds::zero(), elapsed);
  {
    std::lock_guard lock(mutex_);
    if (!signal) {
      ++s_.ignored_writes;
      return;
    }
    ++s_.completions;
    s_.last_since_request_ns = since.count();
  }
  if (on_boot_complete_) on_boot_complete_(since);
}

uint64_t BootComplete::completions() const {
  std::lock_guard lock(mutex_);
  return s_.completions;
}

uint64_t BootComplete::ignored_writes() const {
  std::lock_guard lock(mutex_);
  return s_.ignored_writes;
}

std::optional<std::chrono::nanoseconds> BootComplete::last_since_request() const {
  std::lock_guard lock(mutex_);
  if (s_.last_since_request_ns < 0) return std::nullopt;
  return std::chrono::nanoseconds(s_.last_since_request_ns);
}

BootCompleteState BootComplete::save() const {
  std::lock_guard lock(mutex_);
  return s_;
}

void BootComplete::restore(const BootCompleteState& state) {
  if (state.completions == 0 && state.last_since_request_ns != -1) {
    throw StateError(
        "BootCompleteState.last_since_request_ns: must be -1 when completions is 0, got " +
        std::to_string(state.last_since_request_ns));
  }
  if (state.completions > 0 && state.last_since_request_ns < 0) {
    throw StateError(
        "BootCompleteState.last_since_request_ns: must be non-negative after a completion, got " +
        std::to_string(state.last_since_request_ns));
  }
  std::lock_guard lock(mutex_);
  s_ = state;
}

}  // namespace thaw::devices
