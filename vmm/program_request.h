// One request to a program guest (thaw.after=program): stdin into the
// mailbox, run the clone until the guest says it is done, the response out.
// The clone must be paused (or not yet started) at its ready point; it is
// paused again afterwards, and the caller resets it to the snapshot before
// the next request (snapshot::reset_vm), so every request starts pristine.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "vmm/kvm/kvm_stats.h"
#include "vmm/program_mailbox.h"
#include "vmm/vm.h"

namespace thaw::vmm {

enum class RequestEnd {
  kAnswered,   // the guest wrote its response and paused (see response.outcome)
  kTimedOut,   // the deadline passed: the clone was paused from the host
  kVmStopped,  // the VM stopped instead (guest kernel failure, triple fault, host error)
};
const char* request_end_name(RequestEnd end);

struct ProgramRequestResult {
  RequestEnd end = RequestEnd::kAnswered;
  ProgramResponse response;  // read for kAnswered and kTimedOut (what it wrote so far)
  std::string stop_detail;   // kVmStopped: why, from the VM
  std::chrono::nanoseconds elapsed{0};  // request written -> clone paused again
  uint64_t vm_exits = 0;                // KVM exits the request took (port I/O, MMIO, halts, ...)
  kvm::Counters kvm_counters;           // with a StatsReader: what KVM counted during the request
};

// Serves `stdin_bytes` on `vm`, a program VM that was created with
// pause_on_guest_exit. Needs no guest round trip beyond the run itself:
// the request goes straight into guest memory. Throws InputError for stdin
// over the mailbox's 1 MiB, or for a VM that is not a program guest.
// `stats` (optional, the VM's vCPU's) fills kvm_counters.
ProgramRequestResult serve_program_request(Vm& vm, std::span<const uint8_t> stdin_bytes,
                                           std::chrono::milliseconds timeout,
                                           const kvm::StatsReader* stats = nullptr);

// A one-line account for a user: the program's outcome, the timeout, or why
// the VM stopped.
std::string describe(const ProgramRequestResult& result);

}  // namespace thaw::vmm
