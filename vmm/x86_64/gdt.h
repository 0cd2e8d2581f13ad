// The boot GDT: flat 64-bit code and data segments and a 64-bit TSS, as raw
// descriptors for guest memory and as kvm_segment values for KVM_SET_SREGS.
// Both views come from one SegmentDescriptor so they cannot disagree.
#pragma once

#include <linux/kvm.h>

#include <array>
#include <cstdint>

#include "vmm/memory/guest_memory.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

// Access byte types (Intel SDM vol. 3, 3.4.5.1 and 3.5).
inline constexpr uint8_t kTypeCodeExecReadAccessed = 0xb;
inline constexpr uint8_t kTypeDataReadWriteAccessed = 0x3;
inline constexpr uint8_t kTypeTss64Busy = 0xb;  // system segment (s = 0)

// A decoded segment descriptor. `limit` is the raw 20-bit field; with g set
// it counts 4 KiB pages.
struct SegmentDescriptor {
  uint64_t base = 0;
  uint32_t limit = 0;
  uint8_t type = 0;
  bool s = false;  // code/data (true) or system (false)
  uint8_t dpl = 0;
  bool present = false;
  bool avl = false;
  bool l = false;   // 64-bit code
  bool db = false;  // 32-bit default operand size
  bool g = false;   // limit in 4 KiB units

  // Low 8 bytes of the descriptor. A system descriptor in long mode has a
  // second word: high_word().
  uint64_t low_word() const;
  uint64_t high_word() const { return base >> 32; }
  static SegmentDescriptor decode(uint64_t low, uint64_t high = 0);

  // Byte-granular limit, what KVM and the CPU's hidden part hold.
  uint32_t effective_limit() const { return g ? (limit << 12) | 0xfff : limit; }
};

// The three descriptors of the boot GDT.
SegmentDescriptor boot_code_descriptor();
SegmentDescriptor boot_data_descriptor();
SegmentDescriptor boot_tss_descriptor();

// The GDT as it goes into memory: slot i is selector i*8. Slot 0 is null,
// slot 1 is unused, the TSS takes two slots.
std::array<uint64_t, kGdtSlots> boot_gdt();

// The limit for GDTR: the table size minus one.
inline constexpr uint16_t kGdtLimit = kGdtSlots * 8 - 1;

kvm_segment to_kvm_segment(const SegmentDescriptor& d, uint16_t selector);

// Writes the GDT at kGdtAddr, a zero IDT at kIdtAddr and a zero TSS at kTssAddr.
void write_descriptor_tables(GuestMemory& mem);

}  // namespace thaw::vmm::x86
