#include "vmm/x86_64/registers.h"

#include "vmm/x86_64/gdt.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm::x86 {

kvm_sregs long_mode_sregs(const kvm_sregs& current, uint64_t cr3) {
  kvm_sregs s = current;

  const kvm_segment code = to_kvm_segment(boot_code_descriptor(), kCodeSelector);
  const kvm_segment data = to_kvm_segment(boot_data_descriptor(), kDataSelector);
  s.cs = code;
  s.ds = data;
  s.es = data;
  s.fs = data;
  s.gs = data;
  s.ss = data;
  s.tr = to_kvm_segment(boot_tss_descriptor(), kTssSelector);

  s.gdt.base = kGdtAddr;
  s.gdt.limit = kGdtLimit;
  s.idt.base = kIdtAddr;
  s.idt.limit = static_cast<uint16_t>(kIdtLimit);

  // Reset leaves CD and NW set; clear them so guest memory is cacheable
  // from the first instruction (Linux sets its own CR0 later anyway).
  s.cr0 = (current.cr0 | kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Pg) & ~(kCr0Cd | kCr0Nw);
  s.cr3 = cr3;
  s.cr4 = kCr4Pae;
  // LMA is normally set by the CPU when PG is turned on with LME; KVM_SET_SREGS
  // takes the final state, so both are given.
  s.efer = kEferLme | kEferLma;
  return s;
}

kvm_regs boot_regs(uint64_t entry, uint64_t boot_params_addr) {
  kvm_regs r{};
  r.rip = entry;
  r.rsi = boot_params_addr;
  r.rsp = kBootStackPointer;
  r.rbp = kBootStackPointer;
  r.rflags = kRflagsReserved1;
  return r;
}

kvm_fpu boot_fpu() {
  kvm_fpu f{};
  f.fcw = kFpuControlWordDefault;
  f.mxcsr = kMxcsrDefault;
  return f;
}

}  // namespace thaw::vmm::x86
