// Owner of one VM fd: typed wrappers for the VM-level ioctls thaw uses.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "base/unique_fd.h"
#include "vmm/kvm/vcpu_fd.h"

namespace thaw::vmm::kvm {

class VmFd {
 public:
  explicit VmFd(UniqueFd fd, int vcpu_mmap_size) : fd_(std::move(fd)), vcpu_mmap_size_(vcpu_mmap_size) {}

  void set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size, void* host,
                              uint32_t flags = 0);
  void set_tss_address(uint64_t addr);
  void set_identity_map_address(uint64_t addr);
  void create_irqchip();
  void create_pit2();
  // Raises or lowers an in-kernel irqchip input line (GSI).
  void set_irq_line(uint32_t irq, bool level);
  int check_extension(int capability) const;
  // KVM_IOEVENTFD: a guest write of `len` bytes (1, 2, 4 or 8) to MMIO
  // `addr` signals `event_fd` inside KVM, with no exit to user space. Any
  // value matches (no datamatch).
  void add_mmio_ioeventfd(uint64_t addr, uint32_t len, int event_fd);
  void remove_mmio_ioeventfd(uint64_t addr, uint32_t len, int event_fd);
  // KVM_IRQFD: a write to `event_fd` pulses GSI `gsi` (an edge).
  void add_irqfd(int event_fd, uint32_t gsi);
  void remove_irqfd(int event_fd, uint32_t gsi);

  kvm_irqchip get_irqchip(uint32_t chip_id) const;
  void set_irqchip(const kvm_irqchip& chip);
  kvm_pit_state2 get_pit2() const;
  void set_pit2(const kvm_pit_state2& state);
  kvm_clock_data get_clock() const;
  void set_clock(const kvm_clock_data& data);

  VcpuFd create_vcpu(uint32_t id);
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
  int vcpu_mmap_size_;
};

}  // namespace thaw::vmm::kvm
