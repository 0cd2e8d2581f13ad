// One interrupt wire from a device to the interrupt controller. The VMM
// implements it (KVM_IRQ_LINE on a GSI); tests implement a recording fake.
// Devices describe the wire's level; whether the controller treats the pin
// as edge- or level-triggered is the VMM's and the guest's business.
#pragma once

namespace thaw::devices {

class InterruptLine {
 public:
  virtual ~InterruptLine() = default;
  virtual void set_level(bool high) = 0;
};

}  // namespace thaw::devices
