#include "vmm/state_validation.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "base/errors.h"
#include "base/hex_text.h"
#include "vmm/cpu_state_checks.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm {

namespace {

// Architectural bits (Intel SDM vol. 3, AMD APM vol. 2).
constexpr uint64_t kCr0Pe = 1ULL << 0;
constexpr uint64_t kCr0Nw = 1ULL << 29;
constexpr uint64_t kCr0Cd = 1ULL << 30;
constexpr uint64_t kCr0Pg = 1ULL << 31;
constexpr uint64_t kCr4Pae = 1ULL << 5;
constexpr uint64_t kEferLme = 1ULL << 8;
constexpr uint64_t kEferLma = 1ULL << 10;
// SCE, LME, LMA, NXE, SVME, LMSLE, FFXSR, TCE, AUTOIBRS: every EFER bit KVM
// knows. The rest are reserved.
constexpr uint64_t kEferKnown = (1ULL << 0) | (1ULL << 8) | (1ULL << 10) | (1ULL << 11) | (1ULL << 12) |
                                (1ULL << 13) | (1ULL << 14) | (1ULL << 15) | (1ULL << 21);
// IA32_APIC_BASE: BSP (8), x2APIC enable (10), xAPIC global enable (11),
// base address (12..51). Bits 0..7, 9 and 52..63 are reserved.
constexpr uint64_t kApicBaseBsp = 1ULL << 8;
constexpr uint64_t kApicBaseExtd = 1ULL << 10;
constexpr uint64_t kApicBaseEnable = 1ULL << 11;
constexpr uint64_t kApicBaseAddrMask = ((1ULL << 52) - 1) & ~0xfffULL;
// CR3 bits 12..51: the physical address of the top page table (PCID and
// the PWT/PCD flags live in the low 12 bits).
constexpr uint64_t kCr3AddrMask = ((1ULL << 52) - 1) & ~0xfffULL;
constexpr uint64_t kApicBaseKnown = kApicBaseBsp | kApicBaseExtd | kApicBaseEnable | kApicBaseAddrMask;
constexpr uint32_t kEventFlagsKnown = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
                                      KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM |
                                      KVM_VCPUEVENT_VALID_PAYLOAD | KVM_VCPUEVENT_VALID_TRIPLE_FAULT;
constexpr uint8_t kNmiVector = 2;  // never an exception KVM re-injects as one
constexpr uint32_t kXcr0X87 = 1;   // XCR0 bit 0 must always be set
constexpr uint32_t kPitFlagsKnown = KVM_PIT_FLAGS_HPET_LEGACY | KVM_PIT_FLAGS_SPEAKER_DATA_ON;
constexpr uint8_t kPitModeUnprogrammed = 0xff;  // what KVM reports for a channel nobody set up
constexpr uint32_t kClockFlagsKnown = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME | KVM_CLOCK_HOST_TSC;

std::string check_sregs(const kvm_sregs& s, const ValidationContext& ctx) {
  if (uint64_t bad = s.efer & ~kEferKnown) return "sregs.efer " + hex(s.efer) + " sets reserved bits " + hex(bad);
  if (uint64_t bad = s.cr0 >> 32) return "sregs.cr0 " + hex(s.cr0) + " sets reserved bits " + hex(bad << 32);
  if ((s.cr0 & kCr0Pg) && !(s.cr0 & kCr0Pe)) return "sregs.cr0 " + hex(s.cr0) + " has PG (paging) without PE";
  if ((s.cr0 & kCr0Nw) && !(s.cr0 & kCr0Cd)) return "sregs.cr0 " + hex(s.cr0) + " has NW without CD";
  if (uint64_t bad = s.cr4 >> 32) return "sregs.cr4 " + hex(s.cr4) + " sets reserved bits " + hex(bad << 32);
  if (s.cr8 > 15) return "sregs.cr8 " + hex(s.cr8) + " is above 15";
  // The same rule as KVM's kvm_valid_sregs: long mode is active exactly
  // when LME and PG are set, and then PAE must be on.
  if ((s.efer & kEferLme) && (s.cr0 & kCr0Pg)) {
    if (!(s.cr4 & kCr4Pae)) return "sregs: long mode (EFER.LME with CR0.PG) without CR4.PAE";
    if (!(s.efer & kEferLma)) return "sregs: EFER.LME with CR0.PG but EFER.LMA clear";
  } else {
    if (s.efer & kEferLma) return "sregs.efer " + hex(s.efer) + " has LMA without LME and CR0.PG";
    if (s.cs.l) return "sregs.cs is a 64-bit segment (L=1) outside long mode";
  }
  if (uint64_t bad = s.apic_base & ~kApicBaseKnown) {
    return "sregs.apic_base " + hex(s.apic_base) + " sets reserved bits " + hex(bad);
  }
  if ((s.apic_base & kApicBaseExtd) && !(s.apic_base & kApicBaseEnable)) {
    return "sregs.apic_base " + hex(s.apic_base) + " enables x2APIC without enabling the APIC";
  }
  uint64_t apic_page = s.apic_base & kApicBaseAddrMask;
  if (ctx.memory_size != 0 && (s.apic_base & kApicBaseEnable)) {
    for (const auto& region : plan_ram_regions(ctx.memory_size)) {
      if (region.contains(GuestAddress(apic_page))) {
        return "sregs.apic_base puts the LAPIC at " + hex(apic_page) + ", inside guest RAM";
      }
    }
  }
  // With paging on, the CPU walks page tables at CR3 from its first
  // instruction: a root outside RAM is a state no guest could have run in.
  if (ctx.memory_size != 0 && (s.cr0 & kCr0Pg)) {
    const uint64_t root = s.cr3 & kCr3AddrMask;
    bool in_ram = false;
    for (const auto& region : plan_ram_regions(ctx.memory_size)) {
      in_ram = in_ram || (region.contains(GuestAddress(root)) && region.guest_end().value - root >= 4096);
    }
    if (!in_ram) return "sregs.cr3 " + hex(s.cr3) + " puts the page-table root outside guest RAM";
  }
  return {};
}

std::string check_events(const kvm_vcpu_events& e) {
  if (uint32_t bad = e.flags & ~kEventFlagsKnown) {
    return "events.flags " + hex(e.flags) + " sets unknown bits " + hex(bad);
  }
  if (e.exception.injected || e.exception.pending) {
    if (e.exception.nr > 31) return "events.exception.nr " + std::to_string(e.exception.nr) + " is above 31";
    if (e.exception.nr == kNmiVector) return "events.exception.nr 2 (NMI) is not an exception";
  }
  return {};
}

std::string check_msrs(const std::vector<kvm_msr_entry>& msrs, const ValidationContext& ctx) {
  std::vector<uint32_t> known = ctx.msr_indices;
  std::sort(known.begin(), known.end());
  std::set<uint32_t> seen;
  for (const auto& entry : msrs) {
    if (!std::binary_search(known.begin(), known.end(), entry.index)) {
      return "MSR " + hex(entry.index) + " is not in this host's KVM_GET_MSR_INDEX_LIST";
    }
    if (!seen.insert(entry.index).second) return "MSR " + hex(entry.index) + " appears twice";
  }
  return {};
}

std::string check_vcpu(const VcpuState& s, const ValidationContext& ctx) {
  if (s.vcpu_id >= ctx.vcpu_count) {
    return "vcpu_id " + std::to_string(s.vcpu_id) + " but the VM has " + std::to_string(ctx.vcpu_count) + " vCPUs";
  }
  if (s.cpuid.empty()) return "cpuid has no entries";
  if (s.cpuid.size() > kMaxCpuidEntries) {
    return "cpuid has " + std::to_string(s.cpuid.size()) + " entries; KVM takes at most " +
           std::to_string(kMaxCpuidEntries);
  }
  if (s.mp_state.mp_state > KVM_MP_STATE_SIPI_RECEIVED) {
    return "mp_state " + std::to_string(s.mp_state.mp_state) + " is not an x86 vCPU state (0..4)";
  }
  if (auto why = check_cpuid_entries(s); !why.empty()) return why;
  if (auto why = check_sregs(s.sregs, ctx); !why.empty()) return why;
  if (auto why = check_cr4_features(s); !why.empty()) return why;
  if (auto why = check_xsave_header(s); !why.empty()) return why;
  if (auto why = check_xcr0(s); !why.empty()) return why;
  if (auto why = check_canonical_msrs(s); !why.empty()) return why;
  if (!s.xsave.empty() && s.xsave.size() != ctx.xsave_size) {
    return "xsave is " + std::to_string(s.xsave.size()) + " bytes; this host's XSAVE area is " +
           std::to_string(ctx.xsave_size) + " bytes";
  }
  if (s.xcrs.flags != 0) return "xcrs.flags " + hex(s.xcrs.flags) + " is not 0";
  if (s.xcrs.nr_xcrs > KVM_MAX_XCRS) {
    return "xcrs.nr_xcrs " + std::to_string(s.xcrs.nr_xcrs) + " is above " + std::to_string(KVM_MAX_XCRS);
  }
  for (uint32_t i = 0; i < s.xcrs.nr_xcrs; ++i) {
    const auto& xcr = s.xcrs.xcrs[i];
    if (xcr.xcr != 0) return "xcrs names XCR" + std::to_string(xcr.xcr) + "; only XCR0 exists";
    if (!(xcr.value & kXcr0X87)) return "xcrs: XCR0 " + hex(xcr.value) + " lacks the x87 bit";
  }
  if (s.debugregs.flags != 0) return "debugregs.flags " + hex(s.debugregs.flags) + " is not 0";
  if (s.debugregs.dr6 >> 32) return "debugregs.dr6 " + hex(s.debugregs.dr6) + " sets bits above 31";
  if (s.debugregs.dr7 >> 32) return "debugregs.dr7 " + hex(s.debugregs.dr7) + " sets bits above 31";
  if (auto why = check_msrs(s.msrs, ctx); !why.empty()) return why;
  return check_events(s.events);
}

std::string check_pic(const kvm_irqchip& chip, uint32_t want, const char* slot) {
  if (chip.chip_id != want) {
    return std::string("irqchip in the ") + slot + " slot has chip_id " + std::to_string(chip.chip_id) + ", want " +
           std::to_string(want);
  }
  const auto& pic = chip.chip.pic;
  // The 8259's ICW2 keeps only bits 3..7 of the vector base; init_state
  // counts ICW2..ICW4 (0..3).
  if (pic.irq_base & 7) return std::string(slot) + ": irq_base " + hex(pic.irq_base) + " is not a multiple of 8";
  if (pic.init_state > 3) return std::string(slot) + ": init_state " + std::to_string(pic.init_state) + " is above 3";
  return {};
}

std::string pit_problem(const kvm_pit_state2& pit) {
  if (uint32_t bad = pit.flags & ~kPitFlagsKnown) {
    return "PIT flags " + hex(pit.flags) + " sets unknown bits " + hex(bad);
  }
  for (int i = 0; i < 3; ++i) {
    const auto& ch = pit.channels[i];
    std::string name = "PIT channel " + std::to_string(i);
    if (ch.mode > 5 && ch.mode != kPitModeUnprogrammed) {
      return name + ": mode " + std::to_string(ch.mode) + " is above 5";
    }
    if (ch.count > 0x10000) return name + ": count " + std::to_string(ch.count) + " is above 65536";
    if (ch.rw_mode > 3) return name + ": rw_mode " + std::to_string(ch.rw_mode) + " is above 3";
    if (ch.read_state > 4) return name + ": read_state " + std::to_string(ch.read_state) + " is above 4";
    if (ch.write_state > 4) return name + ": write_state " + std::to_string(ch.write_state) + " is above 4";
  }
  return {};
}

std::string vcpu_problem(const VcpuState& state, const ValidationContext& ctx) {
  auto why = check_vcpu(state, ctx);
  return why.empty() ? why : "vCPU " + std::to_string(state.vcpu_id) + ": " + why;
}

std::string vm_problem(const VmState& state) {
  if (auto why = check_pic(state.pic_master, KVM_IRQCHIP_PIC_MASTER, "PIC master"); !why.empty()) return why;
  if (auto why = check_pic(state.pic_slave, KVM_IRQCHIP_PIC_SLAVE, "PIC slave"); !why.empty()) return why;
  if (state.ioapic.chip_id != KVM_IRQCHIP_IOAPIC) {
    return "irqchip in the IOAPIC slot has chip_id " + std::to_string(state.ioapic.chip_id) + ", want 2";
  }
  // KVM decodes IOAPIC MMIO against the saved base address: any other
  // value would hide the IOAPIC from the guest.
  if (state.ioapic.chip.ioapic.base_address != x86::kIoapicAddr) {
    return "IOAPIC base address " + hex(state.ioapic.chip.ioapic.base_address) + " is not " + hex(x86::kIoapicAddr);
  }
  // Without a PIT nothing of `pit` is applied, so nothing of it is judged.
  if (auto why = state.has_pit ? pit_problem(state.pit) : std::string(); !why.empty()) return why;
  if (uint32_t bad = state.clock.flags & ~kClockFlagsKnown) {
    return "clock flags " + hex(state.clock.flags) + " sets unknown bits " + hex(bad);
  }
  return {};
}

std::string machine_problem(const MachineState& state, const ValidationContext& ctx) {
  const auto& vcpus = state.vcpus;
  if (vcpus.size() != ctx.vcpu_count) {
    return "state has " + std::to_string(vcpus.size()) + " vCPUs; the VM has " + std::to_string(ctx.vcpu_count);
  }
  for (size_t i = 0; i < vcpus.size(); ++i) {
    if (vcpus[i].vcpu_id != i) {
      return "vCPU state " + std::to_string(i) + " has vcpu_id " + std::to_string(vcpus[i].vcpu_id);
    }
    if (auto why = vcpu_problem(vcpus[i], ctx); !why.empty()) return why;
  }
  return vm_problem(state.vm);
}

}  // namespace

void validate_vcpu_state(const VcpuState& state, const ValidationContext& ctx) {
  if (auto why = vcpu_problem(state, ctx); !why.empty()) throw StateError(why);
}

void validate_vm_state(const VmState& state) {
  if (auto why = vm_problem(state); !why.empty()) throw StateError(why);
}

void validate_machine_state(const MachineState& state, const ValidationContext& ctx) {
  if (auto why = machine_problem(state, ctx); !why.empty()) throw StateError(why);
}

}  // namespace thaw::vmm
