// Local APIC set-up for a fresh vCPU: LINT0 delivers the PIC's ExtINT and
// LINT1 delivers NMI, as a PC's firmware would leave them.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

namespace thaw::vmm::x86 {

inline constexpr uint32_t kApicLvtLint0 = 0x350;
inline constexpr uint32_t kApicLvtLint1 = 0x360;
inline constexpr uint32_t kApicDeliveryExtInt = 7;
inline constexpr uint32_t kApicDeliveryNmi = 4;

uint32_t lapic_register(const kvm_lapic_state& lapic, uint32_t offset);
void set_lapic_register(kvm_lapic_state& lapic, uint32_t offset, uint32_t value);
// Returns `lapic` with LINT0 = ExtINT and LINT1 = NMI (delivery mode bits 10:8).
kvm_lapic_state boot_lapic(const kvm_lapic_state& lapic);

}  // namespace thaw::vmm::x86
