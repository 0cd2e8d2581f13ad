// A 16550A-compatible UART, enough of it for Linux's 8250 driver to detect a
// 16550A (scratch, IER, loopback and FIFO probes) and drive it polled or with
// interrupts. Output is instantaneous, so the transmitter is always empty.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "devices/bus_device.h"
#include "devices/interrupt_line.h"

namespace thaw::devices {

// Conventional PC wiring of the first serial port.
inline constexpr uint64_t kCom1Base = 0x3f8;
inline constexpr uint64_t kCom1Irq = 4;
inline constexpr uint64_t kSerial8250Length = 8;  // eight byte-wide registers
inline constexpr size_t kSerial8250RxCapacity = 64;

// Everything the guest can observe, as plain fields. The divisor latch and
// line control do nothing on the host side but the guest reads them back.
struct Serial8250State {
  uint8_t dll = 0x0c;  // divisor latch, 9600 baud after reset
  uint8_t dlm = 0;
  uint8_t ier = 0;  // bits 0-3 only
  uint8_t lcr = 0;
  uint8_t mcr = 0;  // bits 0-4 only
  uint8_t scr = 0;
  uint8_t fcr = 0;                     // persistent FCR bits: FIFO enable, DMA mode, trigger level
  uint8_t msr_deltas = 0;              // MSR bits 0-3, cleared when MSR is read
  bool overrun = false;                // LSR.OE, cleared when LSR is read
  bool thr_interrupt_pending = false;  // THR-empty source, cleared when IIR reports it
  std::vector<uint8_t> rx_fifo;        // oldest first, at most kSerial8250RxCapacity

  bool operator==(const Serial8250State&) const = default;
};

class Serial8250 : public BusDevice {
 public:
  using OutputSink = std::function<void(std::span<const char>)>;

  // `output` gets every transmitted byte as it is written (it may buffer).
  // `irq` is the UART's interrupt wire, or null for a polled-only port; it
  // is told only about level changes (and once on restore). Both are called
  // with the UART's lock held, which keeps output and interrupt levels in
  // order across vCPUs, so they must not call back into this device.
  Serial8250(OutputSink output, std::shared_ptr<InterruptLine> irq);

  // Byte-wide registers; a wider access acts on the register at `offset`
  // and reads the extra bytes as 0 (Linux only uses inb/outb here).
  void read(uint64_t offset, std::span<uint8_t> data) override;
  void write(uint64_t offset, std::span<const uint8_t> data) override;

  // Pushes host input into the receive FIFO and returns how many bytes fit.
  // Bytes beyond kSerial8250RxCapacity are dropped and flagged as an overrun,
  // as on real hardware; a console should retry the rest later.
  size_t queue_input(std::span<const char> bytes);

  Serial8250State save() const;
  // Throws StateError (base/errors.h) naming the bad field; on success the
  // interrupt line is driven to the level the restored state implies.
  void restore(const Serial8250State& state);

 private:
  uint8_t read_register(uint64_t offset);
  void write_register(uint64_t offset, uint8_t value);
  void transmit(uint8_t byte);
  void push_rx(uint8_t byte);
  void set_mcr(uint8_t value);
  uint8_t modem_status_lines() const;  // MSR bits 4-7
  uint8_t interrupt_id() const;        // IIR without the FIFO bits
  void update_interrupt();

  OutputSink output_;
  std::shared_ptr<InterruptLine> irq_;

  mutable std::mutex mutex_;
  Serial8250State s_;  // the live registers and FIFO, so save() is a copy
  bool line_high_ = false;
};

}  // namespace thaw::devices
