#include "devices/legacy/i8042.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "base/errors.h"

namespace thaw::devices {
namespace {

// Status register bits.
constexpr uint8_t kStatusOutputFull = 0x01;
constexpr uint8_t kStatusSystemFlag = 0x04;
constexpr uint8_t kStatusCommand = 0x08;   // last write was to the command port
constexpr uint8_t kStatusUnlocked = 0x10;  // keyboard inhibit switch off

// Command byte (CTR) bits.
constexpr uint8_t kControlSystemFlag = 0x04;
constexpr uint8_t kControlKbdDisabled = 0x10;
constexpr uint8_t kControlAuxDisabled = 0x20;

// Controller commands written to port 0x64.
constexpr uint8_t kCmdReadControl = 0x20;
constexpr uint8_t kCmdWriteControl = 0x60;
constexpr uint8_t kCmdDisableAux = 0xa7;
constexpr uint8_t kCmdEnableAux = 0xa8;
constexpr uint8_t kCmdTestAux = 0xa9;
constexpr uint8_t kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdTestKbd = 0xab;
constexpr uint8_t kCmdDisableKbd = 0xad;
constexpr uint8_t kCmdEnableKbd = 0xae;
// 0xF0..0xFF pulse output-port lines whose bit is 0 in the low nibble; bit 0
// is the CPU reset line, so 0xFE ("pulse reset") and every even value reset.
constexpr uint8_t kCmdPulseFirst = 0xf0;

constexpr uint8_t kSelfTestPassed = 0x55;
constexpr uint8_t kInterfaceTestPassed = 0x00;

}  // namespace

I8042::I8042(std::function<void()> on_reset) : on_reset_(std::move(on_reset)) {}

uint8_t I8042::status() const {
  uint8_t value = kStatusUnlocked;
  if (s_.output_full) value |= kStatusOutputFull;
  if (s_.control & kControlSystemFlag) value |= kStatusSystemFlag;
  if (s_.last_write_command) value |= kStatusCommand;
  return value;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::fill(data.begin(), data.end(), uint8_t{0});
  std::lock_guard lock(mutex_);
  if (offset == kI8042CommandOffset) {
    data[0] = status();
  } else if (offset == kI8042DataOffset) {
    // Reading an empty buffer returns the last byte again, as real parts do.
    data[0] = s_.output;
    s_.output_full = false;
  }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  bool reset = false;
  {
    std::lock_guard lock(mutex_);
    if (offset == kI8042CommandOffset) {
      s_.last_write_command = true;
      reset = run_command(data[0]);
    } else if (offset == kI8042DataOffset) {
      s_.last_write_command = false;
      write_data(data[0]);
    }
  }
  // Outside the lock: the VMM may stop the VM or snapshot this device.
  if (reset && on_reset_) on_reset_();
}

bool I8042::run_command(uint8_t command) {
  s_.pending_command = 0;  // a new command abandons one waiting for data
  switch (command) {
    case kCmdReadControl:
      reply(s_.control);
      break;
    case kCmdWriteControl:
      s_.pending_command = command;
      break;
    case kCmdDisableAux:
      s_.control |= kControlAuxDisabled;
      break;
    case kCmdEnableAux:
      s_.control &= ~kControlAuxDisabled;
      break;
    case kCmdTestAux:
    case kCmdTestKbd:
      reply(kInterfaceTestPassed);
      break;
    case kCmdSelfTest:
      s_.control |= kControlSystemFlag;  // a passed self-test sets the system flag
      reply(kSelfTestPassed);
      break;
    case kCmdDisableKbd:
      s_.control |= kControlKbdDisabled;
      break;
    case kCmdEnableKbd:
      s_.control &= ~kControlKbdDisabled;
      break;
    default:
      if (command >= kCmdPulseFirst && (command & 0x01) == 0) return true;
      break;  // unknown commands are ignored; the guest's probe then moves on
  }
  return false;
}

void I8042::write_data(uint8_t value) {
  if (s_.pending_command == kCmdWriteControl) {
    s_.control = value;
  }
  // Otherwise the byte is for the keyboard, and there is none.
  s_.pending_command = 0;
}

void I8042::reply(uint8_t value) {
  s_.output = value;
  s_.output_full = true;
}

I8042State I8042::save() const {
  std::lock_guard lock(mutex_);
  return s_;
}

void I8042::restore(const I8042State& state) {
  if (state.pending_command != 0 && state.pending_command != kCmdWriteControl) {
    throw StateError("I8042State.pending_command: " +
                                std::to_string(state.pending_command) +
                                " is not a command that takes a data byte");
  }
  std::lock_guard lock(mutex_);
  s_ = state;
}

}  // namespace thaw::devices
