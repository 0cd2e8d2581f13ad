#include "vmm/vm.h"

#include <sys/sysinfo.h>

#include <future>
#include <sstream>
#include <system_error>

#include <spdlog/spdlog.h>

#include "devices/legacy/boot_complete.h"
#include "devices/legacy/debug_exit.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial_8250.h"
#include "devices/virtio/mmio_transport.h"
#include "devices/virtio/vsock_device.h"
#include "devices/virtio/vsock_seccomp.h"
#include "vmm/cpuid_cache.h"
#include "vmm/irq_line.h"
#include "vmm/state_capture.h"
#include "vmm/vcpu_seccomp.h"
#include "vmm/vm_thread_spawners.h"
#include "guest/mini/program_abi.h"
#include "vmm/loader/kernel_image.h"
#include "vmm/memory/device_memory.h"
#include "base/errors.h"
#include "vmm/x86_64/lapic.h"
#include "vmm/x86_64/layout.h"

namespace thaw::vmm {

namespace {

using Clock = std::chrono::steady_clock;

// KVM wants a 3-page TSS region on Intel; put it just under the LAPIC/IOAPIC
// area inside the MMIO gap where no RAM or device lives.
constexpr uint64_t kKvmTssAddress = 0xfffb'd000ULL;

// Host RAM in MiB (MemTotal); 0 when unknown. sysinfo(2), not
// /proc/meminfo: this runs for every restored clone, and the kernel makes
// all of meminfo's text (~10 us here) for each read.
uint64_t host_ram_mib() {
  struct sysinfo info {};
  if (::sysinfo(&info) != 0) return 0;
  return static_cast<uint64_t>(info.totalram) * info.mem_unit >> 20;
}

}  // namespace

const char* boot_complete_action_name(BootCompleteAction action) {
  switch (action) {
    case BootCompleteAction::kContinue: return "continue";
    case BootCompleteAction::kPause: return "pause";
    case BootCompleteAction::kStop: return "stop";
  }
  return "unknown";
}

namespace {

// Checks that need no /dev/kvm: nothing is opened for input that is plainly wrong.
void validate_config(const VmConfig& config) {
  if (config.mem_mib == 0) throw InputError("--mem is 0 MiB; a guest needs at least 2 MiB of RAM");
  if (config.mem_mib < 2) throw InputError("--mem is " + std::to_string(config.mem_mib) + " MiB; a guest needs at least 2 MiB");
  if (uint64_t host = host_ram_mib(); host != 0 && config.mem_mib > host) {
    throw InputError("--mem " + std::to_string(config.mem_mib) + " MiB is more than this host's " +
                     std::to_string(host) + " MiB of RAM");
  }
  if (config.vcpus == 0) throw InputError("--vcpus is 0; a VM needs at least one vCPU");
}

void validate_vcpu_limit(const VmConfig& config, const KvmHost& kvm) {
  unsigned limit = std::min(kvm.max_vcpus(), x86::max_mptable_vcpus());
  if (config.vcpus > limit) {
    throw InputError("--vcpus " + std::to_string(config.vcpus) + " is above this host's limit of " +
                     std::to_string(limit) + " (KVM_CAP_MAX_VCPUS and the MP table)");
  }
}

}  // namespace

std::unique_ptr<Vm> Vm::create(const VmConfig& config) {
  auto setup_start = Clock::now();
  validate_config(config);
  if (config.kernel_path.empty()) throw InputError("no kernel given (--kernel)");
  // The user's files first: a wrong path is bad input on any host, also one
  // without /dev/kvm, and it is named before anything is opened for the VM.
  BootImages images = read_boot_images(config);
  auto host = KvmHost::open(config.kvm_path);
  const KvmHost& kvm = *host;
  validate_vcpu_limit(config, kvm);
  // KVM_GET_SUPPORTED_CPUID costs ~1 ms of CPUID exits on nested hosts:
  // take it from the cache, or ask on a second thread while this one
  // builds the VM.
  std::future<std::vector<kvm_cpuid_entry2>> supported_cpuid;
  if (auto cached = load_cached_cpuid(config.cpuid_cache_dir)) {
    std::promise<std::vector<kvm_cpuid_entry2>> ready;
    ready.set_value(std::move(*cached));
    supported_cpuid = ready.get_future();
  } else {
    supported_cpuid = std::async(std::launch::async, [&kvm, &config] {
      return supported_cpuid_cached(kvm.system(), config.cpuid_cache_dir);
    });
  }
  auto vm = build(config, kvm, GuestMemory::create(config.mem_mib << 20), std::nullopt);
  vm->configure_boot_vcpus(supported_cpuid.get());
  vm->timings_.vm_setup = Clock::now() - setup_start;

  auto load_start = Clock::now();
  vm->load_kernel(images);
  vm->timings_.kernel_load = Clock::now() - load_start;
  return vm;
}

std::unique_ptr<Vm> Vm::create_for_restore(const VmConfig& config, const KvmHost& kvm, GuestMemory memory,
                                           std::optional<kvm::VmFd> shell) {
  auto setup_start = Clock::now();
  validate_config(config);
  validate_vcpu_limit(config, kvm);
  if (memory.size() != config.mem_mib << 20) {
    throw InputError("restored memory is " + std::to_string(memory.size()) + " bytes, the VM is configured for " +
                     std::to_string(config.mem_mib) + " MiB");
  }
  auto vm = build(config, kvm, std::move(memory), std::move(shell));
  vm->timings_.vm_setup = Clock::now() - setup_start;
  return vm;
}

std::unique_ptr<Vm> Vm::build(const VmConfig& config, const KvmHost& kvm, GuestMemory memory,
                              std::optional<kvm::VmFd> shell) {
  std::unique_ptr<Vm> vm(new Vm(config, shell ? std::move(*shell) : kvm.create_vm(), std::move(memory)));
  // Memory before the irqchip and the TSS: the other order made a restore
  // ~5 ms slower on PVM (measured with bench/restore_bench.cpp).
  vm->register_memory();
  vm->vm_fd_.set_tss_address(kKvmTssAddress);
  vm->vm_fd_.create_irqchip();
  if (config.pit) vm->vm_fd_.create_pit2();
  vm->create_devices();
  vm->create_vcpus();
  vm->backend_ = kvm.backend();
  vm->msr_indices_ = kvm.msr_indices();
  const auto& capabilities = kvm.vm_capabilities(vm->vm_fd_);
  vm->xsave_size_ = capabilities.xsave_size;
  vm->tsc_scaling_ = capabilities.tsc_scaling;
  return vm;
}

Vm::Vm(VmConfig config, kvm::VmFd vm_fd, GuestMemory memory)
    : config_(std::move(config)), vm_fd_(std::move(vm_fd)), memory_(std::move(memory)), control_(config_.vcpus) {}

Vm::~Vm() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("stopping VM: {}", e.what());
  }
}

void Vm::register_memory() {
  uint32_t slot = 0;
  for (const auto& region : memory_.regions()) {
    vm_fd_.set_user_memory_region(slot++, region.guest_start.value, region.size, region.host);
  }
}

void Vm::create_devices() {
  ConsoleSink console = config_.console ? config_.console : ConsoleSink([](std::span<const char>) {});
  serial_ = std::make_shared<devices::Serial8250>(console, std::make_shared<KvmIrqLine>(vm_fd_, x86::kCom1Irq));
  pio_bus_.insert(serial_, x86::kCom1Port, x86::kCom1PortCount, "serial COM1");

  i8042_ = std::make_shared<devices::I8042>([this] {
    control_.request_stop(StopReason::kGuestReset, "guest asked for a reset through the i8042");
  });
  pio_bus_.insert(i8042_, x86::kI8042DataPort, 5, "i8042");

  debug_exit_ = std::make_shared<devices::DebugExit>([this](uint8_t code) { on_exit_code(code, "debug-exit port"); });
  pio_bus_.insert(debug_exit_, x86::kDebugExitPort, 4, "debug-exit");

  boot_complete_ = std::make_shared<devices::BootComplete>(
      config_.requested_at, [this](std::chrono::nanoseconds since) { on_boot_complete(since); },
      [this](uint8_t code) { on_exit_code(code, "boot-complete page's exit byte"); });
  mmio_bus_.insert(boot_complete_, x86::kBootCompleteMmioAddr, 4096, "boot-complete");

  if (!config_.vsock_path.empty()) create_vsock();
}

void Vm::on_exit_code(uint8_t code, const char* where) {
  if (code == 0) {
    guest_exits_.fetch_add(1, std::memory_order_relaxed);
    if (config_.pause_on_guest_exit) {
      control_.request_pause();
    } else {
      control_.request_stop(StopReason::kGuestExit, std::string("guest wrote 0 to the ") + where);
    }
  } else if (code == x86::kExitCodePowerOff) {
    control_.request_stop(StopReason::kGuestPowerOff, "the guest powered itself off (reboot(2))");
  } else {
    char buf[128];
    std::snprintf(buf, sizeof buf, "guest reported failure code 0x%02x on the %s", code, where);
    control_.request_stop(StopReason::kGuestFailure, buf);
  }
}

void Vm::create_vsock() {
  device_memory_ = std::make_shared<DeviceMemoryView>(memory_);
  try {
    // A pool's clones join its shared muxer (filtered once, when the pool
    // started); a one-off VM's device starts its own, which filters itself.
    const bool pooled = config_.vcpu_seccomp && config_.thread_spawners;
    vsock_ = std::make_shared<devices::VsockDevice>(
        config_.vsock_path, x86::kVsockGuestCid, config_.vcpu_seccomp ? &devices::vsock_muxer_filter() : nullptr,
        pooled ? config_.thread_spawners->shared_vsock_muxer : nullptr);
  } catch (const std::system_error& e) {
    throw SysError("vsock device", e.code().value(), e.what());
  }
  auto irq = std::make_shared<IrqFdNotifier>(vm_fd_, x86::kVsockIrq);
  vsock_transport_ = std::make_shared<devices::MmioTransport>(vsock_, device_memory_, std::move(irq));
  mmio_bus_.insert(vsock_transport_, x86::kVirtioMmioBase, x86::kVirtioMmioSize, "virtio-mmio vsock");
  // QueueNotify never reaches user space: KVM signals the muxer's eventfd.
  vm_fd_.add_mmio_ioeventfd(x86::kVirtioMmioBase + devices::virtio_mmio::kQueueNotify, 4, vsock_->notify_fd());
}

std::string Vm::kernel_cmdline() const {
  std::string cmdline = config_.cmdline;
  if (vsock_) {
    char device[64];
    std::snprintf(device, sizeof device, "virtio_mmio.device=%lluK@0x%llx:%u",
                  static_cast<unsigned long long>(x86::kVirtioMmioSize >> 10),
                  static_cast<unsigned long long>(x86::kVirtioMmioBase), x86::kVsockIrq);
    if (!cmdline.empty()) cmdline += ' ';
    cmdline += device;
  }
  if (config_.program) {
    if (!cmdline.empty()) cmdline += ' ';
    cmdline += kProgramCmdlineOption;
  }
  return cmdline;
}

void Vm::create_vcpus() {
  const SeccompFilter* filter = config_.vcpu_seccomp ? &vcpu_thread_filter() : nullptr;
  FilteredThreadSpawner* spawner =
      config_.vcpu_seccomp && config_.thread_spawners ? config_.thread_spawners->vcpu.get() : nullptr;
  for (unsigned i = 0; i < config_.vcpus; ++i) {
    vcpus_.push_back(
        std::make_unique<Vcpu>(vm_fd_.create_vcpu(i), i, pio_bus_, mmio_bus_, control_, filter, spawner));
  }
  control_.set_kick([this](size_t index) { vcpus_[index]->kick(); });
}

void Vm::configure_boot_vcpus(const std::vector<kvm_cpuid_entry2>& supported) {
  auto msrs = x86::boot_msrs();
  for (auto& vcpu : vcpus_) {
    auto cpuid = supported;
    x86::configure_cpuid(cpuid, static_cast<unsigned>(vcpu->index()), config_.vcpus);
    vcpu->fd().set_cpuid2(cpuid);
    vcpu->fd().set_msrs(msrs);
    vcpu->fd().set_lapic(x86::boot_lapic(vcpu->fd().get_lapic()));
  }
}

BootImages read_boot_images(const VmConfig& config) {
  BootImages images;
  images.kernel = loader::read_image_file(config.kernel_path, "kernel");
  loader::detect_kernel_format(images.kernel, config.kernel_path);
  if (!config.initrd_path.empty()) images.initrd = loader::read_image_file(config.initrd_path, "initrd");
  if (config.program) images.program = read_program_files(config);
  return images;
}

void Vm::load_kernel(const BootImages& images) {
  x86::BootSetupInput input;
  input.kernel_image = images.kernel;
  input.kernel_name = config_.kernel_path;
  input.initrd = images.initrd;
  input.initrd_name = config_.initrd_path;
  input.cmdline = kernel_cmdline();
  input.vcpu_count = config_.vcpus;
  boot_info_ = x86::setup_boot(memory_, input);
  // After the kernel: the program's segments start at 2 MiB, above it, and
  // its info page at PROGRAM_INFO_ADDR is in no boot structure's way.
  if (config_.program && images.program) {
    if (boot_info_.kernel_end > PROGRAM_USER_BASE) {
      throw InputError("kernel '" + config_.kernel_path + "' ends at " + std::to_string(boot_info_.kernel_end >> 10) +
                       " KiB, past 2 MiB where a program's memory starts: programs run on the mini guest");
    }
    program_layout_ = load_program(memory_, *config_.program, *images.program);
  }

  // Only the boot vCPU gets registers; the others wait for INIT/SIPI.
  auto& boot = vcpus_.front()->fd();
  boot.set_sregs(x86::long_mode_sregs(boot.get_sregs(), boot_info_));
  boot.set_regs(x86::boot_regs(boot_info_));
  boot.set_fpu(x86::boot_fpu());
}

void Vm::start() {
  if (started_) throw std::logic_error("Vm::start called twice");
  started_ = true;
  started_at_ = Clock::now();
  for (auto& vcpu : vcpus_) vcpu->start();
}

bool Vm::pause(std::chrono::milliseconds timeout) {
  control_.request_pause();
  return control_.wait_paused(timeout);
}

void Vm::resume() { control_.resume(); }

void Vm::stop(StopReason reason, std::string detail) {
  control_.request_stop(reason, std::move(detail));
  for (auto& vcpu : vcpus_) vcpu->join();
}

bool Vm::wait(std::chrono::milliseconds timeout) {
  if (control_.wait_paused_or_stopped(timeout)) {
    if (control_.state() == RunState::kStopped) stop();  // joins the threads
    return true;
  }
  // Say where the guest was: a user debugging a stuck guest wants its RIP.
  std::string where;
  if (pause(std::chrono::seconds(1))) {
    for (auto& vcpu : vcpus_) {
      auto regs = vcpu->fd().get_regs();
      char buf[64];
      std::snprintf(buf, sizeof buf, "; vCPU %zu at rip=0x%llx", vcpu->index(), static_cast<unsigned long long>(regs.rip));
      where += buf;
    }
  }
  stop(StopReason::kTimeout, "no boot-complete or exit within " + std::to_string(timeout.count()) + " ms" + where);
  return false;
}

void Vm::on_boot_complete(std::chrono::nanoseconds since_request) {
  {
    std::lock_guard lock(boot_mutex_);
    if (!boot_complete_after_) {
      boot_complete_after_ = since_request;
      timings_.since_request = since_request;
      timings_.guest_run = Clock::now() - started_at_;
    }
  }
  spdlog::info("guest boot complete after {:.3f} ms; action: {}", since_request.count() / 1e6,
               boot_complete_action_name(config_.boot_complete_action));
  switch (config_.boot_complete_action) {
    case BootCompleteAction::kContinue: break;
    case BootCompleteAction::kPause: control_.request_pause(); break;
    case BootCompleteAction::kStop: control_.request_stop(StopReason::kBootComplete, "boot-complete action"); break;
  }
}

std::optional<std::chrono::nanoseconds> Vm::boot_complete_after() const {
  std::lock_guard lock(boot_mutex_);
  return boot_complete_after_;
}

uint64_t Vm::exit_count() const {
  uint64_t total = 0;
  for (const auto& vcpu : vcpus_) {
    const auto& c = vcpu->exit_counts();
    total += c.io.load() + c.mmio.load() + c.other.load();
  }
  return total;
}

}  // namespace thaw::vmm
