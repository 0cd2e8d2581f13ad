#include "vmm/program_request.h"

#include "base/errors.h"

namespace thaw::vmm {

const char* request_end_name(RequestEnd end) {
  switch (end) {
    case RequestEnd::kAnswered: return "answered";
    case RequestEnd::kTimedOut: return "timed out";
    case RequestEnd::kVmStopped: return "vm stopped";
  }
  return "unknown";
}

ProgramRequestResult serve_program_request(Vm& vm, std::span<const uint8_t> stdin_bytes,
                                           std::chrono::milliseconds timeout, const kvm::StatsReader* stats) {
  if (!vm.config().pause_on_guest_exit) {
    throw std::logic_error("serve_program_request: the VM must pause on the guest's exit");
  }
  if (vm.state() == RunState::kStopped) throw InputError("the program VM has stopped: " + vm.stop_detail());
  // The info page is checked on every request: a clone's memory comes from
  // a snapshot file, which is untrusted.
  const ProgramInfo info = read_program_info(vm.memory());
  write_request(vm.memory(), info.mailbox_addr, stdin_bytes);

  ProgramRequestResult result;
  const uint64_t exits_before = vm.guest_exits();
  const uint64_t vm_exits_before = vm.exit_count();
  const kvm::Counters counters_before = stats ? stats->read() : kvm::Counters{};
  const auto start = std::chrono::steady_clock::now();
  if (vm.started()) {
    vm.resume();
  } else {
    vm.start();
  }
  const bool settled = vm.control().wait_paused_or_stopped(timeout);
  if (!settled) {
    // The guest kernel cannot preempt a looping program (ring 3 runs with
    // interrupts off on PVM), so the deadline is the host's to enforce.
    if (!vm.pause()) vm.stop(StopReason::kTimeout, "did not pause after the request's deadline");
  }
  result.elapsed = std::chrono::steady_clock::now() - start;
  result.vm_exits = vm.exit_count() - vm_exits_before;
  if (stats) result.kvm_counters = kvm::counter_delta(stats->read(), counters_before);

  if (vm.state() == RunState::kStopped || vm.state() == RunState::kStopping) {
    vm.stop();  // joins the vCPU threads (the first stop reason is kept)
    result.end = RequestEnd::kVmStopped;
    result.stop_detail = std::string(stop_reason_name(vm.stop_reason())) +
                         (vm.stop_detail().empty() ? "" : ": " + vm.stop_detail());
    result.response = read_response(vm.memory(), info.mailbox_addr);
    return result;
  }
  if (!settled) {
    result.end = RequestEnd::kTimedOut;
  } else if (vm.guest_exits() != exits_before) {
    result.end = RequestEnd::kAnswered;
  } else {
    // Paused, but not by the guest's "done": nothing a program guest does
    // after its ready point, so the clone is not to be trusted with more.
    result.end = RequestEnd::kVmStopped;
    result.stop_detail = "the guest paused without answering";
  }
  result.response = read_response(vm.memory(), info.mailbox_addr);
  return result;
}

std::string describe(const ProgramRequestResult& result) {
  switch (result.end) {
    case RequestEnd::kAnswered: return describe(result.response);
    case RequestEnd::kTimedOut:
      return "timed out after " + std::to_string(result.elapsed.count() / 1'000'000) + " ms: stopped from the host";
    case RequestEnd::kVmStopped: return "the VM stopped: " + result.stop_detail;
  }
  return "unknown";
}

}  // namespace thaw::vmm
