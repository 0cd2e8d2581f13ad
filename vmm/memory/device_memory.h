// Guest RAM as devices see it (devices::GuestMemoryAccess): guest-physical
// ranges in, host spans out, and an empty span instead of an exception for
// a range that is not RAM, since every address a device uses comes from
// the guest.
#pragma once

#include "devices/virtio/guest_memory_access.h"
#include "vmm/memory/guest_memory.h"

namespace thaw::vmm {

class DeviceMemoryView final : public devices::GuestMemoryAccess {
 public:
  // `memory` must outlive the view; its mapping never moves (a reset in
  // place drops pages, not the mapping).
  explicit DeviceMemoryView(GuestMemory& memory) : memory_(memory) {}

  std::span<uint8_t> slice(uint64_t gpa, uint64_t len) override {
    if (len == 0) return {};
    for (const auto& r : memory_.regions()) {
      // Written so that no sum can wrap: gpa is inside r, len fits before its end.
      if (r.contains(GuestAddress(gpa)) && len <= r.guest_end().value - gpa) {
        return {r.host + (gpa - r.guest_start.value), static_cast<size_t>(len)};
      }
    }
    return {};
  }

 private:
  GuestMemory& memory_;
};

}  // namespace thaw::vmm
