#include "pool/program_clone.h"

#include "guest/mini/program_abi.h"
#include "vmm/program_mailbox.h"
#include "vmm/program_request.h"
#include "base/errors.h"

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
  if (function != kProgramFunction) {
    throw BadArgument("template '" + clone.template_name + "' runs a program: its one function is \"" +
                      kProgramFunction + "\", not \"" + function + "\"");
  }
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

}  // namespace thaw::pool
