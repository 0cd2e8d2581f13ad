// Saved machine state is untrusted input: each rule must reject its bad
// value with a message naming the field, and a sane state must pass.
#include "vmm/state_validation.h"

#include <gtest/gtest.h>

#include <functional>

#include "base/errors.h"

namespace thaw::vmm {
namespace {

// The StateError message a check throws, or "" when it passes.
std::string problem(const std::function<void()>& check) {
  try {
    check();
  } catch (const StateError& e) {
    return e.what();
  }
  return "";
}

MachineState machine(std::vector<VcpuState> vcpus, VmState vm) {
  MachineState m;
  m.vcpus = std::move(vcpus);
  m.vm = vm;
  return m;
}

constexpr uint32_t kEfer = 0xc0000080;
constexpr uint32_t kTsc = 0x10;

ValidationContext context() {
  ValidationContext ctx;
  ctx.msr_indices = {kTsc, kEfer, 0x174, 0x175, 0x176};
  ctx.vcpu_count = 2;
  ctx.memory_size = 128ULL << 20;
  ctx.xsave_size = 4096;
  return ctx;
}

// A vCPU in 64-bit long mode, as the mini guest runs.
VcpuState good_vcpu(uint32_t id = 0) {
  VcpuState s;
  s.vcpu_id = id;
  s.cpuid.resize(40);
  s.mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
  s.regs.rip = 0x100000;
  s.regs.rflags = 0x2;
  s.sregs.cr0 = 0x80050033;  // PG, AM, WP, NE, ET, MP, PE
  s.sregs.cr3 = 0x9000;
  s.sregs.cr4 = 0x20;  // PAE
  s.sregs.efer = 0x500;  // LME, LMA
  s.sregs.cs.l = 1;
  s.sregs.apic_base = 0xfee00000 | (1 << 11) | (id == 0 ? 1 << 8 : 0);
  s.xsave.assign(4096, 0);
  s.xcrs.nr_xcrs = 1;
  s.xcrs.xcrs[0].xcr = 0;
  s.xcrs.xcrs[0].value = 1;
  s.debugregs.dr6 = 0xffff0ff0;
  s.debugregs.dr7 = 0x400;
  s.msrs = {{kTsc, 0, 12345}, {kEfer, 0, 0x500}};
  s.events.flags = KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM;
  s.tsc_khz = 2300000;
  return s;
}

VmState good_vm() {
  VmState s;
  s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
  s.pic_master.chip.pic.irq_base = 0x20;
  s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
  s.pic_slave.chip.pic.irq_base = 0x28;
  s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
  s.ioapic.chip.ioapic.base_address = 0xfec00000;
  for (auto& ch : s.pit.channels) {
    ch.mode = 0xff;  // what KVM reports for a channel nobody programmed
    ch.count = 0x10000;
  }
  s.pit.channels[0].mode = 2;
  s.pit.channels[0].rw_mode = 3;
  return s;
}

// Applies `mutate` to a good vCPU state and returns the validation message.
std::string vcpu_error(const std::function<void(VcpuState&)>& mutate) {
  auto s = good_vcpu();
  mutate(s);
  return problem([&] { validate_vcpu_state(s, context()); });
}

std::string vm_error(const std::function<void(VmState&)>& mutate) {
  auto s = good_vm();
  mutate(s);
  return problem([&] { validate_vm_state(s); });
}

#define EXPECT_NAMES(message, needle)                                                  \
  do {                                                                                 \
    std::string m = (message);                                                         \
    EXPECT_NE(m.find(needle), std::string::npos) << "want '" << (needle) << "' in: " << m; \
  } while (0)

TEST(StateValidation, GoodStatesPass) {
  EXPECT_NO_THROW(validate_vcpu_state(good_vcpu(0), context()));
  EXPECT_NO_THROW(validate_vcpu_state(good_vcpu(1), context()));
  EXPECT_NO_THROW(validate_vm_state(good_vm()));
  EXPECT_NO_THROW(validate_machine_state(machine({good_vcpu(0), good_vcpu(1)}, good_vm()), context()));
  // A vCPU still waiting for INIT/SIPI, registers at reset values.
  EXPECT_EQ(vcpu_error([](VcpuState& s) {
              s.mp_state.mp_state = KVM_MP_STATE_UNINITIALIZED;
              s.sregs = {};
              s.sregs.cr0 = 0x60000010;  // CD, NW, ET: the reset value
              s.sregs.apic_base = 0xfee00800;
            }),
            "");
  // No XSAVE saved: the FPU path is used.
  EXPECT_EQ(vcpu_error([](VcpuState& s) { s.xsave.clear(); }), "");
}

TEST(StateValidation, MessagesNameTheVcpu) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.efer |= 1ULL << 40; }), "vCPU 0: ");
}

TEST(StateValidation, RejectsVcpuIdOutsideTheVm) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.vcpu_id = 2; }), "vcpu_id 2");
}

TEST(StateValidation, RejectsMsrNotInKvmsList) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.msrs.push_back({0xdeadbeef, 0, 1}); }), "MSR 0xdeadbeef");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.msrs.push_back({kTsc, 0, 1}); }), "MSR 0x10 appears twice");
}

TEST(StateValidation, RejectsCpuidCount) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.cpuid.resize(257); }), "cpuid has 257 entries");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.cpuid.clear(); }), "cpuid has no entries");
  EXPECT_EQ(vcpu_error([](VcpuState& s) { s.cpuid.resize(256); }), "");
}

TEST(StateValidation, RejectsXsaveSizeOtherThanHosts) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xsave.resize(8192); }), "xsave is 8192 bytes");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xsave.resize(100); }), "this host's XSAVE area is 4096");
}

TEST(StateValidation, RejectsMpStateOutOfRange) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.mp_state.mp_state = KVM_MP_STATE_STOPPED; }), "mp_state 5");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.mp_state.mp_state = 1000; }), "mp_state 1000");
}

TEST(StateValidation, RejectsBadControlRegisters) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.efer |= 1ULL << 40; }), "sregs.efer");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.efer |= 1ULL << 40; }), "reserved bits 0x10000000000");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr0 &= ~1ULL; }), "PG (paging) without PE");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr0 |= 1ULL << 29; }), "NW without CD");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr0 |= 1ULL << 40; }), "sregs.cr0");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr4 |= 1ULL << 33; }), "sregs.cr4");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr8 = 16; }), "sregs.cr8");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr4 = 0; }), "without CR4.PAE");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.efer = 0x100; }), "EFER.LMA clear");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.efer = 0x400; }), "LMA without LME");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) {
                 s.sregs.efer = 0;
                 s.sregs.cr0 = 0x11;
               }),
               "64-bit segment");
}

TEST(StateValidation, RejectsBadApicBase) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.apic_base |= 1; }), "sregs.apic_base");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.apic_base |= 1ULL << 60; }), "reserved bits");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.apic_base = 0xfee00000 | (1 << 10); }),
               "x2APIC without enabling");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.apic_base = 0x100000 | (1 << 11); }), "inside guest RAM");
  // Disabled LAPIC: its base is irrelevant.
  EXPECT_EQ(vcpu_error([](VcpuState& s) { s.sregs.apic_base = 0x100000; }), "");
}

// A snapshot is untrusted: paging from a root outside RAM is refused with
// the value, paging off leaves CR3 unjudged, and PCID bits are no address.
TEST(StateValidation, RejectsAPageTableRootOutsideRam) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr3 = 0x10000000000; }),
               "sregs.cr3 0x10000000000 puts the page-table root outside guest RAM");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.sregs.cr3 = context().memory_size; }), "outside guest RAM");
  EXPECT_EQ(vcpu_error([](VcpuState& s) { s.sregs.cr3 = context().memory_size - 4096 + 0x18; }), "");
  EXPECT_EQ(vcpu_error([](VcpuState& s) {
              s.sregs = {};
              s.sregs.cr0 = 0x11;  // protected mode, no paging
              s.sregs.cr3 = 0xdeadbeef000;
            }),
            "");
}

TEST(StateValidation, RejectsBadXcrsAndDebugRegisters) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xcrs.nr_xcrs = 17; }), "xcrs.nr_xcrs 17");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xcrs.flags = 1; }), "xcrs.flags");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xcrs.xcrs[0].xcr = 1; }), "XCR1");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.xcrs.xcrs[0].value = 6; }), "x87");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.debugregs.flags = 1; }), "debugregs.flags");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.debugregs.dr7 |= 1ULL << 32; }), "debugregs.dr7");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.debugregs.dr6 |= 1ULL << 40; }), "debugregs.dr6");
}

TEST(StateValidation, RejectsBadEvents) {
  EXPECT_NAMES(vcpu_error([](VcpuState& s) {
                 s.events.exception.injected = 1;
                 s.events.exception.nr = 32;
               }),
               "events.exception.nr 32");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) {
                 s.events.exception.pending = 1;
                 s.events.exception.nr = 200;
               }),
               "events.exception.nr 200");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) {
                 s.events.exception.injected = 1;
                 s.events.exception.nr = 2;
               }),
               "NMI");
  // A stale vector with nothing injected or pending is what KVM reports.
  EXPECT_EQ(vcpu_error([](VcpuState& s) { s.events.exception.nr = 99; }), "");
  EXPECT_EQ(vcpu_error([](VcpuState& s) {
              s.events.exception.injected = 1;
              s.events.exception.nr = 14;
            }),
            "");
  EXPECT_NAMES(vcpu_error([](VcpuState& s) { s.events.flags |= 0x1000; }), "events.flags");
}

TEST(StateValidation, RejectsIrqchipsInTheWrongSlots) {
  EXPECT_NAMES(vm_error([](VmState& s) { s.pic_master.chip_id = 1; }), "PIC master slot has chip_id 1");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pic_slave.chip_id = 2; }), "PIC slave slot has chip_id 2");
  EXPECT_NAMES(vm_error([](VmState& s) { s.ioapic.chip_id = 0; }), "IOAPIC slot has chip_id 0");
  EXPECT_NAMES(vm_error([](VmState& s) { s.ioapic.chip.ioapic.base_address = 0x1000; }), "IOAPIC base address");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pic_master.chip.pic.irq_base = 0x21; }), "irq_base");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pic_slave.chip.pic.init_state = 4; }), "init_state");
}

TEST(StateValidation, RejectsBadPitAndClock) {
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.channels[1].mode = 6; }), "PIT channel 1: mode 6");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.channels[2].count = 0x10001; }), "PIT channel 2: count");
  // Without a PIT the PIT fields are not applied, so not judged.
  EXPECT_EQ(vm_error([](VmState& s) {
              s.has_pit = false;
              s.pit.channels[1].mode = 6;
            }),
            "");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.channels[0].rw_mode = 4; }), "rw_mode");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.channels[0].read_state = 5; }), "read_state");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.channels[0].write_state = 5; }), "write_state");
  EXPECT_NAMES(vm_error([](VmState& s) { s.pit.flags = 4; }), "PIT flags");
  EXPECT_NAMES(vm_error([](VmState& s) { s.clock.flags = 1; }), "clock flags");
  EXPECT_EQ(vm_error([](VmState& s) { s.clock.flags = KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME; }), "");
}

TEST(StateValidation, MachineStateChecksCountAndOrder) {
  auto machine_error = [](std::vector<VcpuState> vcpus, VmState vm) {
    return problem([&] { validate_machine_state(machine(std::move(vcpus), vm), context()); });
  };
  EXPECT_NAMES(machine_error({good_vcpu(0)}, good_vm()), "state has 1 vCPUs; the VM has 2");
  EXPECT_NAMES(machine_error({good_vcpu(1), good_vcpu(0)}, good_vm()), "has vcpu_id 1");
  auto bad_vm = good_vm();
  bad_vm.ioapic.chip_id = 7;
  EXPECT_NAMES(machine_error({good_vcpu(0), good_vcpu(1)}, bad_vm), "IOAPIC");
}

}  // namespace
}  // namespace thaw::vmm
