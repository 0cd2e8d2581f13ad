#include "vmm/program_mailbox.h"

#include <cstdio>
#include <cstring>

#include "base/hex_text.h"
#include "guest/mini/program_abi.h"
#include "base/errors.h"

namespace thaw::vmm {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPageFaultVector = 14;
constexpr uint64_t kLastExceptionVector = 31;

// A read-only host view of guest RAM; GuestMemory::slice is for writers.
const uint8_t* view(const GuestMemory& mem, uint64_t addr, uint64_t len, const char* what) {
  for (const auto& r : mem.regions()) {
    const uint64_t start = r.guest_start.value;
    if (addr >= start && addr - start <= r.size && len <= r.size - (addr - start)) return r.host + (addr - start);
  }
  throw InputError(std::string(what) + " [" + hex(addr) + ", +" + hex(len) + ") is not inside guest RAM");
}

void check_mailbox(const GuestMemory& mem, uint64_t mailbox_addr) {
  if (mailbox_addr % kPage != 0) throw InputError("program mailbox at " + hex(mailbox_addr) + " is not page-aligned");
  if (!mem.contains(GuestAddress(mailbox_addr), MAILBOX_SIZE)) {
    throw InputError("program mailbox [" + hex(mailbox_addr) + ", +" + hex(MAILBOX_SIZE) +
                     ") is not inside guest RAM (" + std::to_string(mem.size() >> 20) + " MiB)");
  }
}

void add_problem(ProgramResponse& r, const std::string& what) {
  if (!r.problem.empty()) r.problem += "; ";
  r.problem += what;
}

// Copies a guest buffer of `len` bytes, clamped to `capacity`.
std::vector<uint8_t> read_buffer(const GuestMemory& mem, uint64_t addr, uint64_t len, uint64_t capacity,
                                 const char* name, ProgramResponse& r) {
  if (len > capacity) {
    add_problem(r, std::string(name) + "_len " + std::to_string(len) + " is over its capacity " +
                       std::to_string(capacity));
    len = capacity;
  }
  const uint8_t* p = view(mem, addr, len, name);
  return std::vector<uint8_t>(p, p + len);
}

bool is_known_signal(uint64_t s) {
  return s == PROGRAM_SIGILL || s == PROGRAM_SIGTRAP || s == PROGRAM_SIGBUS || s == PROGRAM_SIGFPE ||
         s == PROGRAM_SIGSEGV;
}

}  // namespace

ProgramInfo read_program_info(const GuestMemory& mem) {
  thaw_program_info raw;
  std::memcpy(&raw, view(mem, PROGRAM_INFO_ADDR, sizeof raw, "program info page"), sizeof raw);
  if (raw.magic != PROGRAM_INFO_MAGIC) {
    throw InputError("no program info page at " + hex(PROGRAM_INFO_ADDR) + " (magic " + hex(raw.magic) +
                     "): the guest was not loaded with a program");
  }
  if (raw.version != PROGRAM_INFO_VERSION) {
    throw InputError("program info page version " + std::to_string(raw.version) + "; this thaw reads version " +
                     std::to_string(PROGRAM_INFO_VERSION));
  }
  if (raw.mailbox_size != MAILBOX_SIZE) {
    throw InputError("program info page: mailbox_size " + hex(raw.mailbox_size) + " is not " + hex(MAILBOX_SIZE));
  }
  check_mailbox(mem, raw.mailbox_addr);
  if (raw.ram_top > mem.size()) {
    throw InputError("program info page: ram_top " + hex(raw.ram_top) + " is past the guest's RAM");
  }
  const void* nul = std::memchr(raw.exe_path, 0, sizeof raw.exe_path);
  if (nul == nullptr) throw InputError("program info page: exe_path is not NUL-terminated");
  ProgramInfo info{raw.entry,      raw.stack_pointer, raw.brk_start,    raw.mmap_top,
                   raw.stack_bottom, raw.stack_top,   raw.files_addr,   raw.files_size,
                   raw.mailbox_addr, raw.mailbox_size, raw.ram_top,     std::string(raw.exe_path)};
  return info;
}

void write_request(GuestMemory& mem, uint64_t mailbox_addr, std::span<const uint8_t> stdin_bytes) {
  if (stdin_bytes.size() > MAILBOX_STDIN_CAPACITY) {
    throw InputError("stdin is " + std::to_string(stdin_bytes.size()) + " bytes; a program request takes at most " +
                     std::to_string(MAILBOX_STDIN_CAPACITY) + " (1 MiB)");
  }
  check_mailbox(mem, mailbox_addr);
  thaw_mailbox header{};
  header.magic = MAILBOX_MAGIC;
  header.stdin_len = stdin_bytes.size();
  mem.write(GuestAddress(mailbox_addr + MAILBOX_STDIN_OFFSET), stdin_bytes, "program stdin");
  mem.write_obj(GuestAddress(mailbox_addr), header, "program mailbox header");
}

ProgramResponse read_response(const GuestMemory& mem, uint64_t mailbox_addr) {
  check_mailbox(mem, mailbox_addr);
  thaw_mailbox m;
  std::memcpy(&m, view(mem, mailbox_addr, sizeof m, "program mailbox header"), sizeof m);

  ProgramResponse r;
  r.status = m.status;
  r.fault_rip = m.fault_rip;
  r.fault_addr = m.fault_addr;
  r.fault_vector = m.fault_vector;
  r.syscalls = m.syscalls;
  r.stdout_bytes = read_buffer(mem, mailbox_addr + MAILBOX_STDOUT_OFFSET, m.stdout_len, MAILBOX_STDOUT_CAPACITY,
                               "stdout", r);
  r.stderr_bytes = read_buffer(mem, mailbox_addr + MAILBOX_STDERR_OFFSET, m.stderr_len, MAILBOX_STDERR_CAPACITY,
                               "stderr", r);
  uint64_t count = m.unknown_syscall_count;
  if (count > MAILBOX_UNKNOWN_SYSCALLS_MAX) {
    add_problem(r, "unknown_syscall_count " + std::to_string(count) + " is over " +
                       std::to_string(MAILBOX_UNKNOWN_SYSCALLS_MAX));
    count = MAILBOX_UNKNOWN_SYSCALLS_MAX;
  }
  r.unknown_syscalls.assign(m.unknown_syscalls, m.unknown_syscalls + count);

  switch (m.outcome) {
    case OUTCOME_NONE: r.outcome = ProgramOutcome::kNone; break;
    case OUTCOME_EXITED:
      r.outcome = ProgramOutcome::kExited;
      if (m.status > 0xff) add_problem(r, "exit status " + std::to_string(m.status) + " is over 255");
      break;
    case OUTCOME_FAULT:
      r.outcome = ProgramOutcome::kFault;
      if (!is_known_signal(m.status)) add_problem(r, "fault signal " + std::to_string(m.status) + " is not one a CPU exception raises");
      if (m.fault_vector > kLastExceptionVector) {
        add_problem(r, "fault vector " + std::to_string(m.fault_vector) + " is not a CPU exception");
      }
      break;
    case OUTCOME_OUTPUT_LIMIT: r.outcome = ProgramOutcome::kOutputLimit; break;
    case OUTCOME_NOT_READY: r.outcome = ProgramOutcome::kNotReady; break;
    case OUTCOME_POWER_OFF:
      r.outcome = ProgramOutcome::kPowerOff;
      if (m.status > POWER_OFF_RESTART) add_problem(r, "power-off kind " + std::to_string(m.status) + " is unknown");
      break;
    default: add_problem(r, "unknown outcome " + std::to_string(m.outcome)); break;
  }
  if (!r.problem.empty()) r.outcome = ProgramOutcome::kBadResponse;
  return r;
}

std::string program_signal_name(uint64_t signal) {
  switch (signal) {
    case PROGRAM_SIGILL: return "SIGILL";
    case PROGRAM_SIGTRAP: return "SIGTRAP";
    case PROGRAM_SIGBUS: return "SIGBUS";
    case PROGRAM_SIGFPE: return "SIGFPE";
    case PROGRAM_SIGSEGV: return "SIGSEGV";
  }
  return "signal " + std::to_string(signal);
}

std::string describe(const ProgramResponse& r) {
  switch (r.outcome) {
    case ProgramOutcome::kNone: return "did not finish: the guest wrote no outcome";
    case ProgramOutcome::kExited: return "exited with status " + std::to_string(r.status);
    case ProgramOutcome::kFault: {
      std::string s = "killed by " + program_signal_name(r.status) + " at rip " + hex(r.fault_rip);
      if (r.fault_vector == kPageFaultVector) s += " (address " + hex(r.fault_addr) + ")";
      return s;
    }
    case ProgramOutcome::kOutputLimit:
      if (r.stderr_bytes.size() >= MAILBOX_STDERR_CAPACITY) return "stderr over 64 KiB: killed";
      return "stdout over 1 MiB: killed";
    case ProgramOutcome::kNotReady: return "ended before reading stdin";
    case ProgramOutcome::kPowerOff:
      return r.status == POWER_OFF_RESTART ? "restarted its guest (reboot(2))"
             : r.status == POWER_OFF_HALT  ? "halted its guest (reboot(2))"
                                           : "powered off its guest (reboot(2))";
    case ProgramOutcome::kBadResponse: return "bad response from the guest: " + r.problem;
  }
  return "unknown outcome";
}

}  // namespace thaw::vmm
