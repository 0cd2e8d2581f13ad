#include "snapshot/machine_state_codec.h"

#include <cstring>
#include <set>
#include <string>
#include <type_traits>

#include "vmm/kvm/kvm_abi.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

template <class T>
kj::ArrayPtr<const kj::byte> bytes_of(const T& obj) {
  static_assert(std::is_trivially_copyable_v<T>);
  return kj::arrayPtr(reinterpret_cast<const kj::byte*>(&obj), sizeof(T));
}

// Copies a kernel struct out of a Data field, which must be exactly its size:
// the struct is fixed ABI, so any other length means a corrupt or foreign file.
template <class T>
T struct_from(capnp::Data::Reader data, const std::string& where, const char* field, const char* type) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (data.size() != sizeof(T)) {
    throw InputError("snapshot state: " + where + field + " is " + std::to_string(data.size()) + " bytes, " +
                     type + " is " + std::to_string(sizeof(T)));
  }
  T obj;
  std::memcpy(&obj, data.begin(), sizeof(T));
  return obj;
}

// The MP states KVM defines for x86 (the rest are s390-only).
bool is_x86_mp_state(uint32_t s) {
  switch (s) {
    case KVM_MP_STATE_RUNNABLE:
    case KVM_MP_STATE_UNINITIALIZED:
    case KVM_MP_STATE_INIT_RECEIVED:
    case KVM_MP_STATE_HALTED:
    case KVM_MP_STATE_SIPI_RECEIVED:
    case KVM_MP_STATE_AP_RESET_HOLD:
    case KVM_MP_STATE_SUSPENDED:
      return true;
    default:
      return false;
  }
}

kvm_irqchip irqchip_from(capnp::Data::Reader data, const char* field, uint32_t chip_id) {
  auto chip = struct_from<kvm_irqchip>(data, "VM ", field, "struct kvm_irqchip");
  if (chip.chip_id != chip_id) {
    throw InputError(std::string("snapshot state: VM ") + field + " has chip_id " + std::to_string(chip.chip_id) +
                     ", expected " + std::to_string(chip_id));
  }
  return chip;
}

}  // namespace

void encode_vcpu(const vmm::VcpuState& vcpu, schema::VcpuState::Builder out) {
  out.setVcpuId(vcpu.vcpu_id);
  auto cpuid = out.initCpuid(static_cast<unsigned>(vcpu.cpuid.size()));
  for (unsigned i = 0; i < vcpu.cpuid.size(); ++i) {
    const auto& e = vcpu.cpuid[i];
    auto o = cpuid[i];
    o.setFunction(e.function);
    o.setIndex(e.index);
    o.setFlags(e.flags);
    o.setEax(e.eax);
    o.setEbx(e.ebx);
    o.setEcx(e.ecx);
    o.setEdx(e.edx);
  }
  out.setMpState(vcpu.mp_state.mp_state);
  out.setRegs(bytes_of(vcpu.regs));
  out.setSregs(bytes_of(vcpu.sregs));
  out.setXsave(kj::arrayPtr(vcpu.xsave.data(), vcpu.xsave.size()));
  out.setFpu(bytes_of(vcpu.fpu));
  out.setXcrs(bytes_of(vcpu.xcrs));
  out.setDebugregs(bytes_of(vcpu.debugregs));
  out.setLapic(bytes_of(vcpu.lapic));
  auto msrs = out.initMsrs(static_cast<unsigned>(vcpu.msrs.size()));
  for (unsigned i = 0; i < vcpu.msrs.size(); ++i) {
    msrs[i].setIndex(vcpu.msrs[i].index);
    msrs[i].setData(vcpu.msrs[i].data);
  }
  out.setEvents(bytes_of(vcpu.events));
  out.setTscKhz(vcpu.tsc_khz);
}

void encode_vm(const vmm::VmState& vm, schema::VmState::Builder out) {
  out.setPicMaster(bytes_of(vm.pic_master));
  out.setPicSlave(bytes_of(vm.pic_slave));
  out.setIoapic(bytes_of(vm.ioapic));
  if (vm.has_pit) {
    out.setPit(bytes_of(vm.pit));
  } else {
    out.setNoPit(true);
  }
  out.setClock(bytes_of(vm.clock));
}

vmm::VcpuState decode_vcpu(schema::VcpuState::Reader in, uint32_t position, const DecodeLimits& limits) {
  const std::string where = "vCPU " + std::to_string(position) + " ";
  vmm::VcpuState v;
  // Position and id must agree: KVM_CREATE_VCPU takes ids 0..N-1 in order,
  // and the MP table and ACPI name APIC ids by the same numbers.
  v.vcpu_id = in.getVcpuId();
  if (v.vcpu_id != position) {
    throw InputError("snapshot state: " + where + "has id " + std::to_string(v.vcpu_id) +
                     "; vCPU ids must be 0..N-1 in order, without gaps or repeats");
  }

  auto cpuid = in.getCpuid();
  if (cpuid.size() == 0 || cpuid.size() > limits.max_cpuid_entries) {
    throw InputError("snapshot state: " + where + "has " + std::to_string(cpuid.size()) +
                     " CPUID entries; expected 1.." + std::to_string(limits.max_cpuid_entries));
  }
  for (auto e : cpuid) {
    kvm_cpuid_entry2 entry{};
    entry.function = e.getFunction();
    entry.index = e.getIndex();
    entry.flags = e.getFlags();
    entry.eax = e.getEax();
    entry.ebx = e.getEbx();
    entry.ecx = e.getEcx();
    entry.edx = e.getEdx();
    v.cpuid.push_back(entry);
  }

  v.mp_state.mp_state = in.getMpState();
  if (!is_x86_mp_state(v.mp_state.mp_state)) {
    throw InputError("snapshot state: " + where + "mp_state " + std::to_string(v.mp_state.mp_state) +
                     " is not an x86 KVM_MP_STATE_* value");
  }
  v.regs = struct_from<kvm_regs>(in.getRegs(), where, "regs", "struct kvm_regs");
  v.sregs = struct_from<kvm_sregs>(in.getSregs(), where, "sregs", "struct kvm_sregs");

  // KVM_GET_XSAVE2 returns at least 4 KiB (struct kvm_xsave in C; C++ sees
  // 4100 bytes, see vmm/kvm/kvm_abi.h) and more with
  // AMX; empty means the host had no XSAVE and `fpu` holds the FPU state.
  auto xsave = in.getXsave();
  if (xsave.size() != 0 && (xsave.size() < vmm::kvm::abi::kXsaveLegacySize || xsave.size() > limits.max_xsave_bytes ||
                            xsave.size() % sizeof(uint32_t) != 0)) {
    throw InputError("snapshot state: " + where + "xsave is " + std::to_string(xsave.size()) +
                     " bytes; expected 0, or a multiple of 4 from " + std::to_string(vmm::kvm::abi::kXsaveLegacySize) + " to " +
                     std::to_string(limits.max_xsave_bytes));
  }
  v.xsave.assign(xsave.begin(), xsave.end());
  v.fpu = struct_from<kvm_fpu>(in.getFpu(), where, "fpu", "struct kvm_fpu");
  v.xcrs = struct_from<kvm_xcrs>(in.getXcrs(), where, "xcrs", "struct kvm_xcrs");
  if (v.xcrs.nr_xcrs > KVM_MAX_XCRS) {
    throw InputError("snapshot state: " + where + "xcrs names " + std::to_string(v.xcrs.nr_xcrs) +
                     " XCRs, KVM holds at most " + std::to_string(KVM_MAX_XCRS));
  }
  v.debugregs = struct_from<kvm_debugregs>(in.getDebugregs(), where, "debugregs", "struct kvm_debugregs");
  v.lapic = struct_from<kvm_lapic_state>(in.getLapic(), where, "lapic", "struct kvm_lapic_state");

  auto msrs = in.getMsrs();
  if (msrs.size() > limits.max_msrs) {
    throw InputError("snapshot state: " + where + "has " + std::to_string(msrs.size()) + " MSRs, over the limit of " +
                     std::to_string(limits.max_msrs));
  }
  std::set<uint32_t> seen;
  for (auto m : msrs) {
    // A repeated index would make KVM_SET_MSRS apply two values in an
    // unspecified order.
    if (!seen.insert(m.getIndex()).second) {
      throw InputError("snapshot state: " + where + "lists MSR " + std::to_string(m.getIndex()) + " twice");
    }
    kvm_msr_entry entry{};
    entry.index = m.getIndex();
    entry.data = m.getData();
    v.msrs.push_back(entry);
  }
  v.events = struct_from<kvm_vcpu_events>(in.getEvents(), where, "events", "struct kvm_vcpu_events");
  v.tsc_khz = in.getTscKhz();
  return v;
}

vmm::VmState decode_vm(schema::VmState::Reader in) {
  vmm::VmState vm;
  vm.pic_master = irqchip_from(in.getPicMaster(), "picMaster", KVM_IRQCHIP_PIC_MASTER);
  vm.pic_slave = irqchip_from(in.getPicSlave(), "picSlave", KVM_IRQCHIP_PIC_SLAVE);
  vm.ioapic = irqchip_from(in.getIoapic(), "ioapic", KVM_IRQCHIP_IOAPIC);
  vm.has_pit = !in.getNoPit();
  if (vm.has_pit) {
    vm.pit = struct_from<kvm_pit_state2>(in.getPit(), "VM ", "pit", "struct kvm_pit_state2");
  } else if (in.hasPit()) {
    throw InputError("snapshot state: VM says noPit but holds a pit");
  }
  vm.clock = struct_from<kvm_clock_data>(in.getClock(), "VM ", "clock", "struct kvm_clock_data");
  return vm;
}

}  // namespace thaw::snapshot
