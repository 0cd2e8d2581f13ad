#include "devices/legacy/serial_8250.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "base/errors.h"

namespace thaw::devices {
namespace {

// Register offsets from the port base (PC16550D datasheet, table II).
constexpr uint64_t kRbrThr = 0;  // DLL when LCR.DLAB
constexpr uint64_t kIer = 1;     // DLM when LCR.DLAB
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThrEmpty = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
constexpr uint8_t kIerMask = 0x0f;

// IIR interrupt identification, highest priority first.
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirThrEmpty = 0x02;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrPersistentMask = 0xc9;  // enable, DMA mode, RX trigger level

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThrEmpty = 0x20;
constexpr uint8_t kLsrTransmitterEmpty = 0x40;

constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kMsrDeltaCts = 0x01;
constexpr uint8_t kMsrDeltaDsr = 0x02;
constexpr uint8_t kMsrTrailingRi = 0x04;
constexpr uint8_t kMsrDeltaDcd = 0x08;
constexpr uint8_t kMsrDeltaMask = 0x0f;

// Outside loopback the port looks like a cable to a ready terminal: carrier,
// DSR and CTS asserted, so the guest never waits on flow control.
constexpr uint8_t kMsrIdleLines = kMsrDcd | kMsrDsr | kMsrCts;

[[noreturn]] void bad_field(const char* field, const std::string& why) {
  throw StateError(std::string("Serial8250State.") + field + ": " + why);
}

void check_mask(const char* field, uint8_t value, uint8_t allowed) {
  if (value & ~allowed) {
    bad_field(field, "value " + std::to_string(value) + " sets bits outside mask " +
                         std::to_string(allowed));
  }
}

}  // namespace

Serial8250::Serial8250(OutputSink output, std::shared_ptr<InterruptLine> irq)
    : output_(std::move(output)), irq_(std::move(irq)) {}

void Serial8250::read(uint64_t offset, std::span<uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  data[0] = read_register(offset);
  std::fill(data.begin() + 1, data.end(), uint8_t{0});
}

void Serial8250::write(uint64_t offset, std::span<const uint8_t> data) {
  if (data.empty()) return;
  std::lock_guard lock(mutex_);
  write_register(offset, data[0]);
}

uint8_t Serial8250::read_register(uint64_t offset) {
  const bool dlab = s_.lcr & kLcrDlab;
  uint8_t value = 0;
  switch (offset) {
    case kRbrThr:
      if (dlab) return s_.dll;
      if (!s_.rx_fifo.empty()) {
        value = s_.rx_fifo.front();
        s_.rx_fifo.erase(s_.rx_fifo.begin());
      }
      break;
    case kIer:
      return dlab ? s_.dlm : s_.ier;
    case kIirFcr: {
      // DLAB does not affect IIR; Linux's EFR probe (LCR=0xBF) relies on
      // reading a non-zero IIR here to rule out the 16650 family.
      const uint8_t id = interrupt_id();
      value = id | ((s_.fcr & kFcrEnable) ? kIirFifoEnabled : 0);
      // Reading IIR is how the guest acknowledges a THR-empty interrupt.
      if (id == kIirThrEmpty) s_.thr_interrupt_pending = false;
      break;
    }
    case kLcr:
      return s_.lcr;
    case kMcr:
      return s_.mcr;
    case kLsr:
      value = kLsrThrEmpty | kLsrTransmitterEmpty;
      if (!s_.rx_fifo.empty()) value |= kLsrDataReady;
      if (s_.overrun) value |= kLsrOverrun;
      s_.overrun = false;
      break;
    case kMsr:
      value = modem_status_lines() | s_.msr_deltas;
      s_.msr_deltas = 0;
      break;
    case kScr:
      return s_.scr;
    default:
      return 0;
  }
  update_interrupt();
  return value;
}

void Serial8250::write_register(uint64_t offset, uint8_t value) {
  const bool dlab = s_.lcr & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        s_.dll = value;
        return;
      }
      transmit(value);
      break;
    case kIer: {
      if (dlab) {
        s_.dlm = value;
        return;
      }
      const uint8_t old = s_.ier;
      s_.ier = value & kIerMask;
      // The transmitter is always empty, so enabling the THR-empty interrupt
      // raises it at once; Linux's startup THRE test expects exactly that.
      const bool was_on = old & kIerThrEmpty;
      const bool is_on = s_.ier & kIerThrEmpty;
      if (is_on != was_on) s_.thr_interrupt_pending = is_on;
      break;
    }
    case kIirFcr: {
      const uint8_t old = s_.fcr;
      s_.fcr = (value & kFcrEnable) ? (value & kFcrPersistentMask) : 0;
      // Toggling FIFO mode resets the FIFOs, as does an explicit clear.
      if ((old ^ s_.fcr) & kFcrEnable || (value & kFcrClearRx)) s_.rx_fifo.clear();
      break;
    }
    case kLcr:
      s_.lcr = value;
      return;
    case kMcr:
      set_mcr(value & kMcrMask);
      break;
    case kScr:
      s_.scr = value;
      return;
    default:
      return;  // LSR and MSR are read-only; writes are ignored
  }
  update_interrupt();
}

void Serial8250::transmit(uint8_t byte) {
  if (s_.mcr & kMcrLoop) {
    push_rx(byte);
  } else if (output_) {
    const char c = static_cast<char>(byte);
    output_(std::span<const char>(&c, 1));
  }
  // Output is instantaneous, so the holding register is empty again.
  s_.thr_interrupt_pending = true;
}

void Serial8250::push_rx(uint8_t byte) {
  if (s_.rx_fifo.size() < kSerial8250RxCapacity) {
    s_.rx_fifo.push_back(byte);
  } else {
    s_.overrun = true;
  }
}

void Serial8250::set_mcr(uint8_t value) {
  const uint8_t before = modem_status_lines();
  s_.mcr = value;
  const uint8_t after = modem_status_lines();
  const uint8_t changed = before ^ after;
  if (changed & kMsrCts) s_.msr_deltas |= kMsrDeltaCts;
  if (changed & kMsrDsr) s_.msr_deltas |= kMsrDeltaDsr;
  if ((before & kMsrRi) && !(after & kMsrRi)) s_.msr_deltas |= kMsrTrailingRi;
  if (changed & kMsrDcd) s_.msr_deltas |= kMsrDeltaDcd;
}

uint8_t Serial8250::modem_status_lines() const {
  if (!(s_.mcr & kMcrLoop)) return kMsrIdleLines;
  // Loopback wires the modem outputs back to the inputs (datasheet 8.6);
  // Linux's probe sets RTS|OUT2 and expects CTS|DCD.
  uint8_t lines = 0;
  if (s_.mcr & kMcrRts) lines |= kMsrCts;
  if (s_.mcr & kMcrDtr) lines |= kMsrDsr;
  if (s_.mcr & kMcrOut1) lines |= kMsrRi;
  if (s_.mcr & kMcrOut2) lines |= kMsrDcd;
  return lines;
}

uint8_t Serial8250::interrupt_id() const {
  if ((s_.ier & kIerLineStatus) && s_.overrun) return kIirLineStatus;
  if ((s_.ier & kIerRxData) && !s_.rx_fifo.empty()) return kIirRxData;
  if ((s_.ier & kIerThrEmpty) && s_.thr_interrupt_pending) return kIirThrEmpty;
  if ((s_.ier & kIerModemStatus) && s_.msr_deltas) return kIirModemStatus;
  return kIirNone;
}

// The line is high while any enabled source is pending. Like QEMU, OUT2 does
// not gate it; the PC's OUT2 gate only matters to drivers that never set it.
void Serial8250::update_interrupt() {
  const bool high = interrupt_id() != kIirNone;
  if (high == line_high_) return;
  line_high_ = high;
  if (irq_) irq_->set_level(high);
}

size_t Serial8250::queue_input(std::span<const char> bytes) {
  std::lock_guard lock(mutex_);
  const size_t room = kSerial8250RxCapacity - s_.rx_fifo.size();
  const size_t accepted = std::min(room, bytes.size());
  for (size_t i = 0; i < accepted; ++i) s_.rx_fifo.push_back(static_cast<uint8_t>(bytes[i]));
  if (accepted < bytes.size()) s_.overrun = true;
  update_interrupt();
  return accepted;
}

Serial8250State Serial8250::save() const {
  std::lock_guard lock(mutex_);
  return s_;
}

void Serial8250::restore(const Serial8250State& state) {
  check_mask("ier", state.ier, kIerMask);
  check_mask("mcr", state.mcr, kMcrMask);
  check_mask("fcr", state.fcr, kFcrPersistentMask);
  if (state.fcr != 0 && !(state.fcr & kFcrEnable)) {
    bad_field("fcr", "trigger or DMA bits set with the FIFO disabled");
  }
  check_mask("msr_deltas", state.msr_deltas, kMsrDeltaMask);
  if (state.rx_fifo.size() > kSerial8250RxCapacity) {
    bad_field("rx_fifo", std::to_string(state.rx_fifo.size()) + " bytes exceed the capacity of " +
                             std::to_string(kSerial8250RxCapacity));
  }

  std::lock_guard lock(mutex_);
  s_ = state;
  // Always drive the wire once: after a reset in place its last level came
  // from the state being thrown away, and the interrupt controller must agree.
  line_high_ = interrupt_id() != kIirNone;
  if (irq_) irq_->set_level(line_high_);
}

}  // namespace thaw::devices
