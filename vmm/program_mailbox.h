// The host's side of a program guest's mailbox (guest/mini/program_abi.h):
// one request (stdin) in, one response (outcome, stdout, stderr) out, read
// and written through GuestMemory while the clone is paused. Everything the
// guest wrote is untrusted: lengths are clamped to their buffers and any
// inconsistency turns the response into ProgramOutcome::kBadResponse.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/memory/guest_memory.h"

namespace thaw::vmm {

// The program info page as the VMM wrote it at load (validated on read).
struct ProgramInfo {
  uint64_t entry = 0;
  uint64_t stack_pointer = 0;
  uint64_t brk_start = 0;
  uint64_t mmap_top = 0;
  uint64_t stack_bottom = 0;
  uint64_t stack_top = 0;
  uint64_t files_addr = 0;
  uint64_t files_size = 0;
  uint64_t mailbox_addr = 0;
  uint64_t mailbox_size = 0;
  uint64_t ram_top = 0;
  std::string exe_path;
};

// Reads the info page at PROGRAM_INFO_ADDR: how a restored clone, which has
// no ProgramLayout at hand, finds its mailbox. Throws InputError when the
// magic or version is wrong (not a program guest), or the mailbox is not a
// page-aligned MAILBOX_SIZE range inside RAM.
ProgramInfo read_program_info(const GuestMemory& mem);

// Writes a request: magic, stdin length and bytes. It also clears the
// response fields so that a stale answer is never read back as this one.
// Throws InputError for stdin over MAILBOX_STDIN_CAPACITY (1 MiB) or a
// mailbox outside RAM.
void write_request(GuestMemory& mem, uint64_t mailbox_addr, std::span<const uint8_t> stdin_bytes);

enum class ProgramOutcome {
  kNone,         // the guest wrote no outcome
  kExited,       // exit/exit_group; status = the exit code
  kFault,        // a CPU exception in the program; status = the signal
  kOutputLimit,  // stdout or stderr over its capacity: killed
  kNotReady,     // cold boot: it ended before its first read of stdin
  kPowerOff,     // reboot(2): status = POWER_OFF_*; the guest ended with it
  kBadResponse,  // the guest wrote something impossible: see `problem`
};

struct ProgramResponse {
  ProgramOutcome outcome = ProgramOutcome::kNone;
  uint64_t status = 0;
  uint64_t fault_rip = 0;
  uint64_t fault_addr = 0;
  uint64_t fault_vector = 0;
  std::vector<uint8_t> stdout_bytes;  // at most MAILBOX_STDOUT_CAPACITY
  std::vector<uint8_t> stderr_bytes;  // at most MAILBOX_STDERR_CAPACITY
  uint64_t syscalls = 0;
  std::vector<uint16_t> unknown_syscalls;  // at most MAILBOX_UNKNOWN_SYSCALLS_MAX
  std::string problem;  // kBadResponse: what was wrong, "; "-separated
};

// Reads and validates the guest's response. Never throws for what the
// guest wrote; throws InputError only for a mailbox outside RAM.
ProgramResponse read_response(const GuestMemory& mem, uint64_t mailbox_addr);

// One line for a user: "exited with status 3", "killed by SIGSEGV at rip
// 0x401000 (address 0x0)", "stdout over 1 MiB: killed", "ended before
// reading stdin".
std::string describe(const ProgramResponse& response);

// "SIGSEGV" for 11; "signal 42" for what program_abi.h does not name.
std::string program_signal_name(uint64_t signal);

}  // namespace thaw::vmm
