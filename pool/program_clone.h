// A program template's side of the pool (TemplateSpec::program): the cold
// boot runs the user's static program in the mini guest to its ready point
// (its first read of stdin), and each invoke of a leased clone is one
// request through the guest's mailbox (vmm/program_request.h) instead of a
// call to the built-in agent over vsock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pool/clone.h"
#include "pool/pool_types.h"
#include "vmm/vm.h"
#include "vmm/vm_config.h"

namespace thaw::pool {

// Makes `config` boot the spec's program: the program loaded after the
// kernel, the boot-complete write (the ready point) pausing the VM, and the
// guest's "done" pausing it too. No vsock device: the mailbox replaces it.
void configure_program_boot(vmm::VmConfig& config, const TemplateSpec& spec);

// Why a program VM that should be paused at its ready point is not, for a
// user: the program's own account from the mailbox (it exited, faulted)
// and its stderr where there is one, else the VM's stop reason.
std::string program_not_ready_reason(vmm::Vm& vm);

// Serves one invoke on a leased program clone, at its ready point: the
// caller holds clone.invoke_mutex and has reset a clone that already
// served a request on this lease (clone.served), so every request starts
// from the snapshot.
// BadArgument for a function other than "run" or a payload over the
// mailbox; GuestGone when the request timed out, the VM stopped or the
// guest answered nonsense (the caller destroys the clone).
//
// The result: status = the exit status; 128 + the signal when the program
// faulted; 137 (killed) when its output went over the mailbox's cap.
// payload = stdout; stderr_bytes = stderr, at most kMaxInvokeStderrBytes,
// with a "thaw: ..." line that says why for a fault or an output overflow.
InvokeResult serve_program_invoke(Clone& clone, const std::string& function, const std::vector<uint8_t>& payload,
                                  std::chrono::milliseconds timeout);

// The same contract in a Linux template's clone, whose init agent
// (guest/linux) runs the program: invoke("run") over vsock, answered with
// the agent's status and a payload of
//   u32 outcome (OUTCOME_* of guest/mini/program_abi.h), u32 status,
//   u32 stdout length, stdout, stderr (the rest)
// which program_result_from_linux_run turns into the InvokeResult a mini
// program clone gives (status, stdout, stderr, the same notes). The clone
// runs (it was resumed when handed out); the caller holds invoke_mutex
// and has reset and resumed it if it already served a request.
InvokeResult serve_linux_invoke(Clone& clone, const std::string& function, const std::vector<uint8_t>& payload,
                                std::chrono::milliseconds timeout);
// GuestGone for an agent status other than ok, a payload shorter than its
// header, a stdout length past its end, stderr over kMaxInvokeStderrBytes
// or an unknown outcome.
InvokeResult program_result_from_linux_run(const InvokeResult& answer);

}  // namespace thaw::pool
