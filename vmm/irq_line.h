// An interrupt line into the in-kernel irqchip (PIC + IOAPIC): the VMM's side
// of devices::InterruptLine, so devices raise interrupts without seeing KVM.
#pragma once

#include <cstdint>

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

}  // namespace thaw::vmm
