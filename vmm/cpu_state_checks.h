// The checks on a vCPU's saved state that depend on its own CPUID: what
// KVM refuses with a bare EINVAL at KVM_SET_CPUID2, KVM_SET_SREGS,
// KVM_SET_XCRS, KVM_SET_XSAVE or (partly) KVM_SET_MSRS. A snapshot is
// untrusted input, so these run before the first restore ioctl and name the
// field instead (state_validation.cpp calls them). Pure: no KVM.
#pragma once

#include <string>

#include "vmm/machine_state.h"

namespace thaw::vmm {

// Each returns why the state would be refused, or "" when it would not.
// CPUID 0x80000008: a virtual-address width KVM takes (0, 48 or 57).
std::string check_cpuid_entries(const VcpuState& s);
// CR4: reserved bits, and feature bits the vCPU's CPUID does not offer.
std::string check_cr4_features(const VcpuState& s);
// XCR0: x87 always, AVX with SSE, AVX-512's three bits together on top of
// AVX, MPX's two together, nothing CPUID leaf 0xD does not offer.
std::string check_xcr0(const VcpuState& s);
// The XSAVE area's header: components CPUID leaf 0xD offers, the standard
// (non-compacted) format, zero reserved bytes; MXCSR's reserved bits clear.
std::string check_xsave_header(const VcpuState& s);
// FS/GS/KERNEL_GS base, LSTAR and CSTAR hold canonical addresses (48-bit,
// or 57-bit with CR4.LA57).
std::string check_canonical_msrs(const VcpuState& s);

}  // namespace thaw::vmm
