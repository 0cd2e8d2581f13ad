#include "vmm/x86_64/gdt.h"

#include <vector>

namespace thaw::vmm::x86 {

// Descriptor bit layout (low word):
//   [15:0] limit 15:0   [39:16] base 23:0   [43:40] type  [44] S  [46:45] DPL
//   [47] P   [51:48] limit 19:16   [52] AVL  [53] L  [54] D/B  [55] G
//   [63:56] base 31:24
uint64_t SegmentDescriptor::low_word() const {
  uint64_t w = 0;
  w |= static_cast<uint64_t>(limit & 0xffff);
  w |= (base & 0xff'ffff) << 16;
  w |= static_cast<uint64_t>(type & 0xf) << 40;
  w |= static_cast<uint64_t>(s) << 44;
  w |= static_cast<uint64_t>(dpl & 3) << 45;
  w |= static_cast<uint64_t>(present) << 47;
  w |= static_cast<uint64_t>((limit >> 16) & 0xf) << 48;
  w |= static_cast<uint64_t>(avl) << 52;
  w |= static_cast<uint64_t>(l) << 53;
  w |= static_cast<uint64_t>(db) << 54;
  w |= static_cast<uint64_t>(g) << 55;
  w |= ((base >> 24) & 0xff) << 56;
  return w;
}

SegmentDescriptor SegmentDescriptor::decode(uint64_t low, uint64_t high) {
  SegmentDescriptor d;
  d.limit = static_cast<uint32_t>((low & 0xffff) | (((low >> 48) & 0xf) << 16));
  d.base = ((low >> 16) & 0xff'ffff) | (((low >> 56) & 0xff) << 24);
  d.type = static_cast<uint8_t>((low >> 40) & 0xf);
  d.s = (low >> 44) & 1;
  d.dpl = static_cast<uint8_t>((low >> 45) & 3);
  d.present = (low >> 47) & 1;
  d.avl = (low >> 52) & 1;
  d.l = (low >> 53) & 1;
  d.db = (low >> 54) & 1;
  d.g = (low >> 55) & 1;
  // Only system descriptors are 16 bytes in long mode.
  if (!d.s) d.base |= (high & 0xffff'ffff) << 32;
  return d;
}

SegmentDescriptor boot_code_descriptor() {
  // Flat, 64-bit (L set, D/B clear as the SDM requires with L).
  return SegmentDescriptor{.base = 0, .limit = 0xfffff, .type = kTypeCodeExecReadAccessed, .s = true,
                           .dpl = 0, .present = true, .avl = false, .l = true, .db = false, .g = true};
}

SegmentDescriptor boot_data_descriptor() {
  return SegmentDescriptor{.base = 0, .limit = 0xfffff, .type = kTypeDataReadWriteAccessed, .s = true,
                           .dpl = 0, .present = true, .avl = false, .l = false, .db = true, .g = true};
}

SegmentDescriptor boot_tss_descriptor() {
  // VM entry requires a busy TSS in TR, even though nothing ever switches
  // tasks or reads the (zero) stack pointers in it before the guest loads its own.
  return SegmentDescriptor{.base = kTssAddr, .limit = static_cast<uint32_t>(kTssLimit),
                           .type = kTypeTss64Busy, .s = false, .dpl = 0, .present = true,
                           .avl = false, .l = false, .db = false, .g = false};
}

std::array<uint64_t, kGdtSlots> boot_gdt() {
  std::array<uint64_t, kGdtSlots> gdt{};
  gdt[kCodeSelector / 8] = boot_code_descriptor().low_word();
  gdt[kDataSelector / 8] = boot_data_descriptor().low_word();
  auto tss = boot_tss_descriptor();
  gdt[kTssSelector / 8] = tss.low_word();
  gdt[kTssSelector / 8 + 1] = tss.high_word();
  return gdt;
}

kvm_segment to_kvm_segment(const SegmentDescriptor& d, uint16_t selector) {
  kvm_segment seg{};
  seg.base = d.base;
  seg.limit = d.effective_limit();
  seg.selector = selector;
  seg.type = d.type;
  seg.present = d.present;
  seg.dpl = d.dpl;
  seg.db = d.db;
  seg.s = d.s;
  seg.l = d.l;
  seg.g = d.g;
  seg.avl = d.avl;
  seg.unusable = d.present ? 0 : 1;
  return seg;
}

void write_descriptor_tables(GuestMemory& mem) {
  auto gdt = boot_gdt();
  mem.write_obj(GuestAddress(kGdtAddr), gdt, "boot GDT");
  mem.write_obj(GuestAddress(kIdtAddr), uint64_t{0}, "boot IDT");
  std::vector<uint8_t> tss(kTssLimit + 1, 0);
  // I/O map base past the limit: no I/O permission bitmap, so ring 3 gets
  // no port access unless the guest's own TSS grants it.
  tss[0x66] = static_cast<uint8_t>(kTssLimit + 1);
  mem.write(GuestAddress(kTssAddr), tss, "boot TSS");
}

}  // namespace thaw::vmm::x86
