#include "pool/program_clone.h"

#include "guest/mini/program_abi.h"
#include "vmm/program_mailbox.h"
#include "vmm/program_request.h"
#include "base/errors.h"
#include "base/printable_text.h"
#include "pool/invoke_protocol.h"

namespace thaw::pool {

namespace {

using Clock = std::chrono::steady_clock;

// SIGKILL's number: what a shell reports (128 + 9) for a process the
// system killed, here for output over the mailbox's capacity.
constexpr uint32_t kKilledStatus = 128 + 9;

std::string text_of(const std::vector<uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }

// The tail of `bytes` plus `note`, within the invoke result's stderr cap:
// the end of a log says most about why a program failed.
std::vector<uint8_t> capped_stderr(std::vector<uint8_t> bytes, const std::string& note) {
  if (!note.empty()) {
    if (!bytes.empty() && bytes.back() != '\n') bytes.push_back('\n');
    bytes.insert(bytes.end(), note.begin(), note.end());
    bytes.push_back('\n');
  }
  if (bytes.size() > kMaxInvokeStderrBytes) bytes.erase(bytes.begin(), bytes.end() - kMaxInvokeStderrBytes);
  return bytes;
}

// A program template has one function, in either guest.
void check_program_function(const Clone& clone, const std::string& function) {
  if (function != kProgramFunction) {
    throw BadArgument("template '" + clone.template_name + "' runs a program: its one function is \"" +
                      kProgramFunction + "\", not \"" + function + "\"");
  }
}

std::string stderr_suffix(const std::vector<uint8_t>& bytes) {
  if (bytes.empty()) return {};
  auto tail = capped_stderr(bytes, {});
  if (tail.size() > 4096) tail.erase(tail.begin(), tail.end() - 4096);
  return "; its stderr:\n" + text_of(tail);
}

}  // namespace

void configure_program_boot(vmm::VmConfig& config, const TemplateSpec& spec) {
  vmm::ProgramSpec program;
  program.path = spec.program;
  program.args = spec.args;
  program.env = spec.env;
  program.files_dir = spec.files_dir;
  config.program = std::move(program);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  config.pause_on_guest_exit = true;
  config.pit = false;  // the mini guest's timer is the LAPIC's; a PIT costs milliseconds per clone
}

std::string program_not_ready_reason(vmm::Vm& vm) {
  std::string why = std::string(vmm::stop_reason_name(vm.stop_reason())) +
                    (vm.stop_detail().empty() ? "" : ": " + vm.stop_detail());
  try {
    auto info = vmm::read_program_info(vm.memory());
    auto r = vmm::read_response(vm.memory(), info.mailbox_addr);
    if (r.outcome != vmm::ProgramOutcome::kNone) why = "the program " + vmm::describe(r) + " (" + why + ")";
    why += stderr_suffix(r.stderr_bytes);
  } catch (const InputError&) {
    // No readable mailbox: the guest kernel failed before it set one up.
  }
  return "the program did not reach its ready point (its first read of stdin): " + why;
}

InvokeResult serve_program_invoke(Clone& clone, const std::string& function, const std::vector<uint8_t>& payload,
                                  std::chrono::milliseconds timeout) {
  auto start = Clock::now();
  check_program_function(clone, function);
  if (clone.served) throw std::logic_error("serve_program_invoke: the clone was not reset after its last request");
  vmm::ProgramRequestResult r;
  try {
    clone.served = true;
    r = vmm::serve_program_request(clone.vm(), payload, timeout);
  } catch (const InputError& e) {
    // Over the mailbox's stdin capacity is the caller's; anything else
    // (a stopped VM, a mangled info page) is the clone's.
    if (payload.size() > MAILBOX_STDIN_CAPACITY) throw BadArgument(std::string("payload: ") + e.what());
    throw GuestGone(std::string("the program clone cannot take a request: ") + e.what());
  }
  if (r.end != vmm::RequestEnd::kAnswered) {
    throw GuestGone("the program's request " + vmm::describe(r) + stderr_suffix(r.response.stderr_bytes));
  }
  const auto& answer = r.response;
  InvokeResult out;
  switch (answer.outcome) {
    case vmm::ProgramOutcome::kExited:
      out.status = static_cast<uint32_t>(answer.status);
      out.stderr_bytes = capped_stderr(answer.stderr_bytes, {});
      break;
    case vmm::ProgramOutcome::kFault:
      out.status = 128 + static_cast<uint32_t>(answer.status & 0x7f);
      out.stderr_bytes = capped_stderr(answer.stderr_bytes, "thaw: the program was " + vmm::describe(answer));
      break;
    case vmm::ProgramOutcome::kOutputLimit:
      out.status = kKilledStatus;
      out.stderr_bytes = capped_stderr(answer.stderr_bytes, "thaw: the program's " + vmm::describe(answer));
      break;
    default:
      // Nothing a healthy guest writes after its ready point.
      throw GuestGone("the program guest answered wrongly: " + vmm::describe(answer));
  }
  out.payload = answer.stdout_bytes;
  out.unknown_syscalls = answer.unknown_syscalls;
  out.guest_ms = std::chrono::duration<double, std::milli>(r.elapsed).count();
  out.total_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  return out;
}

namespace {

uint32_t load_u32(const std::vector<uint8_t>& bytes, size_t at) {
  return static_cast<uint32_t>(bytes[at]) | static_cast<uint32_t>(bytes[at + 1]) << 8 |
         static_cast<uint32_t>(bytes[at + 2]) << 16 | static_cast<uint32_t>(bytes[at + 3]) << 24;
}

std::string signal_note(uint32_t signal) { return "thaw: the program was killed by signal " + std::to_string(signal); }

}  // namespace

InvokeResult program_result_from_linux_run(const InvokeResult& answer) {
  constexpr size_t kHeader = 12;
  if (answer.status != kInvokeOk) {
    throw GuestGone("the Linux guest's agent refused the request (status " + std::to_string(answer.status) +
                    "): " + printable_text(text_of(answer.payload), 256));
  }
  const auto& bytes = answer.payload;
  if (bytes.size() < kHeader) throw GuestGone("the Linux guest's answer is shorter than its 12-byte header");
  const uint32_t outcome = load_u32(bytes, 0);
  const uint32_t status = load_u32(bytes, 4);
  const uint32_t stdout_len = load_u32(bytes, 8);
  if (stdout_len > bytes.size() - kHeader) throw GuestGone("the Linux guest's answer claims more stdout than it carries");
  const size_t stderr_at = kHeader + stdout_len;
  if (bytes.size() - stderr_at > kMaxInvokeStderrBytes) {
    throw GuestGone("the Linux guest's answer carries more stderr than " + std::to_string(kMaxInvokeStderrBytes) +
                    " bytes");
  }
  InvokeResult out;
  std::vector<uint8_t> err(bytes.begin() + static_cast<ptrdiff_t>(stderr_at), bytes.end());
  switch (outcome) {
    case OUTCOME_EXITED:
      if (status > 255) throw GuestGone("the Linux guest reports exit status " + std::to_string(status));
      out.status = status;
      out.stderr_bytes = capped_stderr(std::move(err), {});
      break;
    case OUTCOME_FAULT:
      if (status == 0 || status > 127) throw GuestGone("the Linux guest reports signal " + std::to_string(status));
      out.status = 128 + status;
      out.stderr_bytes = capped_stderr(std::move(err), signal_note(status));
      break;
    case OUTCOME_OUTPUT_LIMIT:
      out.status = kKilledStatus;
      out.stderr_bytes = capped_stderr(std::move(err), "thaw: the program's output went over what one response "
                                                       "carries (1 MiB, stderr at most 64 KiB): killed");
      break;
    default:
      throw GuestGone("the Linux guest answered an unknown outcome " + std::to_string(outcome));
  }
  out.payload.assign(bytes.begin() + kHeader, bytes.begin() + static_cast<ptrdiff_t>(stderr_at));
  out.guest_ms = answer.guest_ms;
  out.total_ms = answer.total_ms;
  return out;
}

InvokeResult serve_linux_invoke(Clone& clone, const std::string& function, const std::vector<uint8_t>& payload,
                                std::chrono::milliseconds timeout) {
  auto start = Clock::now();
  check_program_function(clone, function);
  encode_invoke_request(function, payload);  // BadArgument for an oversized payload, before the guest sees it
  if (clone.served) throw std::logic_error("serve_linux_invoke: the clone was not reset after its last request");
  clone.served = true;
  auto answer = call_agent(agent_call_for(clone, function, payload, start + timeout));
  return program_result_from_linux_run(answer);
}

}  // namespace thaw::pool
