#include "vmm/x86_64/lapic.h"

#include <cstring>

namespace thaw::vmm::x86 {

uint32_t lapic_register(const kvm_lapic_state& lapic, uint32_t offset) {
  uint32_t value;
  std::memcpy(&value, lapic.regs + offset, sizeof value);
  return value;
}

void set_lapic_register(kvm_lapic_state& lapic, uint32_t offset, uint32_t value) {
  std::memcpy(lapic.regs + offset, &value, sizeof value);
}

kvm_lapic_state boot_lapic(const kvm_lapic_state& lapic) {
  kvm_lapic_state result = lapic;
  auto with_delivery = [](uint32_t reg, uint32_t mode) { return (reg & ~0x700u) | (mode << 8); };
  set_lapic_register(result, kApicLvtLint0, with_delivery(lapic_register(lapic, kApicLvtLint0), kApicDeliveryExtInt));
  set_lapic_register(result, kApicLvtLint1, with_delivery(lapic_register(lapic, kApicLvtLint1), kApicDeliveryNmi));
  return result;
}

}  // namespace thaw::vmm::x86
