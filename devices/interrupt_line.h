// Interrupt wires from a device to the interrupt controller. The VMM
// implements them (KVM_IRQ_LINE or an irqfd on a GSI); tests implement a
// recording fake.
#pragma once

namespace thaw::devices {

// A level-driven wire. Devices describe the wire's level; whether the
// controller treats the pin as edge- or level-triggered is the VMM's and the
// guest's business.
class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void set_level(bool high) = 0;
};

// An edge: every notify() is one interrupt (KVM pulses the pin through an
// irqfd). Devices that use it keep a status register the guest reads and
// acknowledges, so back-to-back notifications the controller merges lose
// nothing. notify() must be safe to call from any thread.
class InterruptNotifier {
 public:
  virtual ~InterruptNotifier() = default;
  virtual void notify() = 0;
};

}  // namespace thaw::devices
