// Interrupt wires into the in-kernel irqchip (PIC + IOAPIC): the VMM's side
// of devices::InterruptLine and devices::InterruptNotifier, so devices raise
// interrupts without seeing KVM.
#pragma once

#include <cstdint>

#include "base/eventfd.h"
#include "base/unique_fd.h"
#include "devices/interrupt_line.h"
#include "vmm/kvm/vm_fd.h"

namespace thaw::vmm {

class KvmIrqLine final : public devices::InterruptLine {
 public:
  KvmIrqLine(kvm::VmFd& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void set_level(bool high) override { vm_.set_irq_line(gsi_, high); }

 private:
  kvm::VmFd& vm_;
  uint32_t gsi_;
};

// An edge on a GSI through an irqfd: notify() is one eventfd write, which
// KVM turns into a pulse on the pin from whatever thread wrote it (no
// ioctl, no vCPU exit). Closing the eventfd detaches it from KVM.
class IrqFdNotifier final : public devices::InterruptNotifier {
 public:
  IrqFdNotifier(kvm::VmFd& vm, uint32_t gsi) : fd_(make_eventfd("the irqfd of GSI " + std::to_string(gsi))) {
    vm.add_irqfd(fd_.get(), gsi);
  }
  void notify() override { signal_eventfd(fd_.get()); }

 private:
  UniqueFd fd_;
};

}  // namespace thaw::vmm
