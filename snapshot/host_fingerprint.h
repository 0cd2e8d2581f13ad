// Where a snapshot was taken, and whether this host can restore it.
#pragma once

#include <string>

#include "snapshot/snapshot_state.h"

namespace thaw::snapshot {

// This host: the CPU model from /proc/cpuinfo (empty if it names none), the
// given KVM backend (from `thaw doctor`'s detection) and this thaw's version.
HostFingerprint current_host_fingerprint(const std::string& kvm_backend);

// Empty when a snapshot taken on `saved` should restore `here`; otherwise a
// message naming what differs. A different CPU model or KVM backend means
// different CPUID, MSRs and XSAVE layout, which KVM may refuse half-way
// through a restore. The thaw version is not compared: the state file's
// format version already says whether this thaw can read it.
std::string check_host_compatible(const HostFingerprint& saved, const HostFingerprint& here);

}  // namespace thaw::snapshot
