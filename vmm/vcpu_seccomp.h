// The seccomp allow-list of a vCPU thread. A vCPU thread runs guest code
// and answers its exits (port and MMIO accesses reach the devices on this
// thread), so it is where a guest that breaks a device would find itself:
// the filter leaves it KVM_RUN on its own vCPU fd and the few calls the
// exit path makes, and nothing that opens files or sockets, starts
// processes, maps executable memory or changes credentials.
#pragma once

#include <vector>

#include "base/seccomp_filter.h"

namespace thaw::vmm {

// The rules, for tests and `thaw doctor`: each call and why it is needed is
// in vcpu_seccomp.cpp.
std::vector<SeccompRule> vcpu_thread_rules();

// The compiled filter, built on first use and never changed afterwards, so
// every VM of the process shares one. Throws SysError if libseccomp fails.
const SeccompFilter& vcpu_thread_filter();

// Work a vCPU thread does once before its filter is applied, so that later
// calls need no file access: reads the time zone (spdlog's timestamps) and
// sets up the default logger (which asks whether stdout is a terminal).
void prepare_thread_for_vcpu_filter();

}  // namespace thaw::vmm
