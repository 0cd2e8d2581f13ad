#include "vmm/vcpu.h"

#include <signal.h>

#include <cstdio>
#include <mutex>

#include <spdlog/spdlog.h>

#include "base/hex_text.h"
#include "base/background_thread.h"
#include "base/errors.h"
#include "vmm/kvm_host_check.h"
#include "vmm/vcpu_seccomp.h"

namespace thaw::vmm {

namespace {

void ignore_kick(int) {}

// Words a user can act on for KVM_EXIT_INTERNAL_ERROR.
std::string describe_internal_error(const kvm_run* run) {
  std::string detail = "suberror " + std::to_string(run->internal.suberror);
  if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION) {
    // The PVM hint only where it applies: on kvm_intel/kvm_amd it misleads.
    detail += host_kvm_is_pvm() ? " (instruction emulation failed; on PVM hosts guest ring 0 cannot run XSAVE/XRSTOR, "
                                  "POPCNT, INT3, CLAC/STAC and similar: see `thaw doctor`)"
                                : " (instruction emulation failed)";
  }
  for (uint32_t i = 0; i < run->internal.ndata && i < 16; ++i) detail += " data[" + std::to_string(i) + "]=" + hex(run->internal.data[i]);
  return detail;
}

}  // namespace

int Vcpu::kick_signal() { return SIGRTMIN; }

void Vcpu::install_kick_handler() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_handler = ignore_kick;  // no SA_RESTART: KVM_RUN must return EINTR
    sigemptyset(&action.sa_mask);
    if (::sigaction(kick_signal(), &action, nullptr) != 0) throw_errno("sigaction", "vCPU kick signal");
  });
}

Vcpu::Vcpu(kvm::VcpuFd fd, size_t index, const devices::Bus& pio, const devices::Bus& mmio, RunControl& control,
           const SeccompFilter* filter, FilteredThreadSpawner* spawner)
    : fd_(std::move(fd)), index_(index), pio_(pio), mmio_(mmio), control_(control), filter_(filter), spawner_(spawner) {}

Vcpu::~Vcpu() { join(); }

void Vcpu::start() {
  install_kick_handler();
  const std::string name = "vCPU " + std::to_string(index_);
  thread_ = spawner_ != nullptr ? spawner_->spawn([this] { thread_main(); }, name)
                                : StackThread([this] { thread_main(); }, name);
}

void Vcpu::join() {
  if (thread_.joinable()) thread_.join();
}

void Vcpu::kick() {
  // immediate_exit covers the window before the thread enters KVM_RUN; the
  // signal covers a thread already inside it.
  __atomic_store_n(&fd_.run_struct()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  if (thread_ready_.load(std::memory_order_acquire)) ::pthread_kill(native_, kick_signal());
}

void Vcpu::complete_pending_exit() {
  __atomic_store_n(&fd_.run_struct()->immediate_exit, 1, __ATOMIC_SEQ_CST);
  fd_.run();
}

void Vcpu::thread_main() {
  native_ = ::pthread_self();
  // A vCPU resumed (or woken by an interrupt) must not preempt the VMM
  // thread that resumed it: that thread is answering a client.
  if (spawner_ == nullptr) make_this_thread_background();  // else inherited
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, kick_signal());
  ::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr);
  thread_ready_.store(true, std::memory_order_release);
  try {
    if (filter_ != nullptr && spawner_ == nullptr) {  // else inherited from the spawner
      prepare_thread_for_vcpu_filter();
      filter_->apply_to_this_thread();
    }
    // Just before the first KVM_RUN: what "first guest instruction" measures.
    first_entry_ns_.store(std::chrono::steady_clock::now().time_since_epoch().count(), std::memory_order_release);
    while (true) {
      if (!control_.running()) {
        complete_pending_exit();
        bool again = control_.park(index_, [this] {
          __atomic_store_n(&fd_.run_struct()->immediate_exit, 0, __ATOMIC_SEQ_CST);
        });
        if (!again) break;
        continue;
      }
      if (!fd_.run()) continue;  // kicked: the loop head decides what next
      if (!handle_exit()) break;
    }
  } catch (const std::exception& e) {
    control_.request_stop(StopReason::kHostError, "vCPU " + std::to_string(index_) + ": " + e.what());
  }
  thread_ready_.store(false, std::memory_order_release);
  control_.vcpu_exited(index_);
}

std::string Vcpu::where_is_guest() {
  // Best effort: the registers may be unreadable after a failure.
  try {
    auto regs = fd_.get_regs();
    auto sregs = fd_.get_sregs();
    return "; rip=" + hex(regs.rip) + " rsp=" + hex(regs.rsp) + " cr2=" + hex(sregs.cr2) + " cr3=" + hex(sregs.cr3) +
           " cr4=" + hex(sregs.cr4) + " efer=" + hex(sregs.efer);
  } catch (const std::exception&) {
    return {};
  }
}

bool Vcpu::handle_exit() {
  kvm_run* run = fd_.run_struct();
  switch (run->exit_reason) {
    case KVM_EXIT_IO:
      exits_.io.fetch_add(1, std::memory_order_relaxed);
      handle_io(run);
      return true;
    case KVM_EXIT_MMIO:
      exits_.mmio.fetch_add(1, std::memory_order_relaxed);
      handle_mmio(run);
      return true;
    case KVM_EXIT_INTR:
      return true;
    case KVM_EXIT_HLT:
      // Only without an in-kernel irqchip; thaw always has one.
      control_.request_stop(StopReason::kGuestExit, "vCPU " + std::to_string(index_) + " halted");
      return false;
    case KVM_EXIT_SHUTDOWN:
      control_.request_stop(StopReason::kTripleFault, "vCPU " + std::to_string(index_) +
                                                          ": the guest triple-faulted (KVM_EXIT_SHUTDOWN)" +
                                                          where_is_guest());
      return false;
    case KVM_EXIT_SYSTEM_EVENT:
      control_.request_stop(run->system_event.type == KVM_SYSTEM_EVENT_RESET ? StopReason::kGuestReset
                                                                              : StopReason::kGuestExit,
                            "system event " + std::to_string(run->system_event.type));
      return false;
    case KVM_EXIT_INTERNAL_ERROR:
      control_.request_stop(StopReason::kInternalError,
                            "vCPU " + std::to_string(index_) + ": " + describe_internal_error(run) + where_is_guest());
      return false;
    case KVM_EXIT_FAIL_ENTRY:
      control_.request_stop(StopReason::kInternalError,
                            "vCPU " + std::to_string(index_) + ": entry failed, hardware reason " +
                                hex(run->fail_entry.hardware_entry_failure_reason));
      return false;
    default:
      exits_.other.fetch_add(1, std::memory_order_relaxed);
      control_.request_stop(StopReason::kInternalError,
                            "vCPU " + std::to_string(index_) + ": unexpected exit reason " +
                                std::to_string(run->exit_reason));
      return false;
  }
}

void Vcpu::handle_io(kvm_run* run) {
  auto* base = reinterpret_cast<uint8_t*>(run) + run->io.data_offset;
  spdlog::trace("vCPU {}: {} port {:#x} size {} count {}", index_, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                run->io.port, run->io.size, run->io.count);
  // String I/O (rep outsb/insb) arrives as `count` items in a row.
  for (uint32_t i = 0; i < run->io.count; ++i) {
    std::span<uint8_t> item(base + i * run->io.size, run->io.size);
    bool handled = run->io.direction == KVM_EXIT_IO_OUT ? pio_.write(run->io.port, item) : pio_.read(run->io.port, item);
    if (!handled) {
      // Nothing there: reads float high, as on a PC. Log a few, not a flood.
      if (run->io.direction == KVM_EXIT_IO_IN) std::fill(item.begin(), item.end(), 0xff);
      if (unhandled_logged_++ < 8) spdlog::debug("vCPU {}: no device at port {:#x}", index_, run->io.port);
    }
  }
}

void Vcpu::handle_mmio(kvm_run* run) {
  std::span<uint8_t> data(run->mmio.data, run->mmio.len);
  spdlog::trace("vCPU {}: MMIO {} {:#x} len {}", index_, run->mmio.is_write ? "write" : "read", run->mmio.phys_addr,
                run->mmio.len);
  bool handled = run->mmio.is_write ? mmio_.write(run->mmio.phys_addr, data) : mmio_.read(run->mmio.phys_addr, data);
  if (!handled) {
    if (!run->mmio.is_write) std::fill(data.begin(), data.end(), 0xff);
    if (unhandled_logged_++ < 8) spdlog::debug("vCPU {}: no device at MMIO {:#x}", index_, run->mmio.phys_addr);
  }
}

}  // namespace thaw::vmm
