#include "vmm/kvm/vm_fd.h"

#include <fcntl.h>
#include <sys/mman.h>

#include "vmm/kvm/kvm_ioctl.h"

namespace thaw::vmm::kvm {

void VmFd::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                                  uint32_t flags) {
  kvm_userspace_memory_region region{};
  region.slot = slot;
  region.flags = flags;
  region.guest_phys_addr = guest_phys;
  region.memory_size = size;
  region.userspace_addr = reinterpret_cast<uint64_t>(host);
  char ctx[96];
  std::snprintf(ctx, sizeof ctx, "slot %u at 0x%llx, %llu MiB", slot, static_cast<unsigned long long>(guest_phys),
                static_cast<unsigned long long>(size >> 20));
  checked_ioctl(fd_.get(), KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION", ctx);
}

void VmFd::set_tss_address(uint64_t addr) {
  checked_ioctl(fd_.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr), "KVM_SET_TSS_ADDR");
}

void VmFd::set_identity_map_address(uint64_t addr) {
  checked_ioctl(fd_.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr, "KVM_SET_IDENTITY_MAP_ADDR");
}

void VmFd::create_irqchip() { checked_ioctl(fd_.get(), KVM_CREATE_IRQCHIP, 0, "KVM_CREATE_IRQCHIP"); }

void VmFd::create_pit2() {
  kvm_pit_config config{};
  // Speaker port dummy: guests probe port 0x61 and should not exit for it.
  config.flags = KVM_PIT_SPEAKER_DUMMY;
  checked_ioctl(fd_.get(), KVM_CREATE_PIT2, &config, "KVM_CREATE_PIT2");
}

void VmFd::set_irq_line(uint32_t irq, bool level) {
  kvm_irq_level line{};
  line.irq = irq;
  line.level = level ? 1 : 0;
  checked_ioctl(fd_.get(), KVM_IRQ_LINE, &line, "KVM_IRQ_LINE", "irq " + std::to_string(irq));
}

namespace {

kvm_ioeventfd mmio_ioeventfd(uint64_t addr, uint32_t len, int event_fd, uint32_t flags) {
  kvm_ioeventfd io{};
  io.addr = addr;
  io.len = len;
  io.fd = event_fd;
  io.flags = flags;
  return io;
}

std::string hex_context(const char* what, uint64_t addr) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s 0x%llx", what, static_cast<unsigned long long>(addr));
  return buf;
}

}  // namespace

void VmFd::add_mmio_ioeventfd(uint64_t addr, uint32_t len, int event_fd) {
  auto io = mmio_ioeventfd(addr, len, event_fd, 0);
  checked_ioctl(fd_.get(), KVM_IOEVENTFD, &io, "KVM_IOEVENTFD", hex_context("MMIO", addr));
}

void VmFd::remove_mmio_ioeventfd(uint64_t addr, uint32_t len, int event_fd) {
  auto io = mmio_ioeventfd(addr, len, event_fd, KVM_IOEVENTFD_FLAG_DEASSIGN);
  checked_ioctl(fd_.get(), KVM_IOEVENTFD, &io, "KVM_IOEVENTFD (deassign)", hex_context("MMIO", addr));
}

void VmFd::add_irqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd irq{};
  irq.fd = static_cast<uint32_t>(event_fd);
  irq.gsi = gsi;
  checked_ioctl(fd_.get(), KVM_IRQFD, &irq, "KVM_IRQFD", "GSI " + std::to_string(gsi));
}

void VmFd::remove_irqfd(int event_fd, uint32_t gsi) {
  kvm_irqfd irq{};
  irq.fd = static_cast<uint32_t>(event_fd);
  irq.gsi = gsi;
  irq.flags = KVM_IRQFD_FLAG_DEASSIGN;
  checked_ioctl(fd_.get(), KVM_IRQFD, &irq, "KVM_IRQFD (deassign)", "GSI " + std::to_string(gsi));
}

int VmFd::check_extension(int capability) const {
  return checked_ioctl(fd_.get(), KVM_CHECK_EXTENSION, capability, "KVM_CHECK_EXTENSION (VM)",
                       "capability " + std::to_string(capability));
}

kvm_irqchip VmFd::get_irqchip(uint32_t chip_id) const {
  kvm_irqchip chip{};
  chip.chip_id = chip_id;
  checked_ioctl(fd_.get(), KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP", "chip " + std::to_string(chip_id));
  return chip;
}

void VmFd::set_irqchip(const kvm_irqchip& chip) {
  checked_ioctl(fd_.get(), KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP", "chip " + std::to_string(chip.chip_id));
}

kvm_pit_state2 VmFd::get_pit2() const {
  kvm_pit_state2 state{};
  checked_ioctl(fd_.get(), KVM_GET_PIT2, &state, "KVM_GET_PIT2");
  return state;
}

void VmFd::set_pit2(const kvm_pit_state2& state) { checked_ioctl(fd_.get(), KVM_SET_PIT2, &state, "KVM_SET_PIT2"); }

kvm_clock_data VmFd::get_clock() const {
  kvm_clock_data data{};
  checked_ioctl(fd_.get(), KVM_GET_CLOCK, &data, "KVM_GET_CLOCK");
  return data;
}

void VmFd::set_clock(const kvm_clock_data& data) { checked_ioctl(fd_.get(), KVM_SET_CLOCK, &data, "KVM_SET_CLOCK"); }

VcpuFd VmFd::create_vcpu(uint32_t id) {
  std::string ctx = "vCPU " + std::to_string(id);
  UniqueFd fd(checked_ioctl(fd_.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id), "KVM_CREATE_VCPU", ctx));
  Mapping run = Mapping::map(static_cast<size_t>(vcpu_mmap_size_), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0,
                             "kvm_run of vCPU");
  return VcpuFd(std::move(fd), std::move(run), id);
}

}  // namespace thaw::vmm::kvm
