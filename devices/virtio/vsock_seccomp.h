// The seccomp allow-list of a vsock device's muxer thread. That thread
// parses every packet the guest puts on the tx queue and moves bytes
// between guest memory and the host's unix sockets, so after the vCPU
// threads it is where a guest that broke the device would find itself. The
// filter leaves it the socket calls of its own protocol (unix sockets only),
// its epoll set and eventfds, and what locks, malloc and clocks need:
// nothing that opens files, starts processes, maps executable memory,
// changes credentials or touches KVM.
#pragma once

#include <vector>

#include "base/seccomp_filter.h"

namespace thaw::devices {

// The rules, for tests and `thaw doctor`; why each is needed is in
// vsock_seccomp.cpp.
std::vector<SeccompRule> vsock_muxer_rules();

// Compiled on first use and shared by every device of the process. Throws
// SysError if libseccomp fails.
const SeccompFilter& vsock_muxer_filter();

}  // namespace thaw::devices
