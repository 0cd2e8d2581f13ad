// Internal to snapshot/: vCPU and VM state to and from their Cap'n Proto
// form. KVM's fixed-layout structs travel as Data of exactly their size.
#pragma once

#include "snapshot/snapshot.capnp.h"
#include "snapshot/state_codec.h"
#include "vmm/machine_state.h"

namespace thaw::snapshot {

void encode_vcpu(const vmm::VcpuState& vcpu, schema::VcpuState::Builder out);
void encode_vm(const vmm::VmState& vm, schema::VmState::Builder out);

// Throw InputError naming the vCPU and field ("vCPU 1 regs is 10 bytes,
// struct kvm_regs is 144").
vmm::VcpuState decode_vcpu(schema::VcpuState::Reader in, uint32_t position, const DecodeLimits& limits);
vmm::VmState decode_vm(schema::VmState::Reader in);

}  // namespace thaw::snapshot
