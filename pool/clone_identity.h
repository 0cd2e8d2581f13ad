// A clone's identity, handed to it at acquire without a guest round trip:
// the VMM writes the guest's control page (guest/mini/README.md, "The
// control page") while the clone is still paused, then resumes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "pool/pool_types.h"
#include "vmm/memory/guest_memory.h"

namespace thaw::pool {

// Guest-physical address and layout of the control page (little-endian u64s).
inline constexpr uint64_t kControlPageAddress = 0x80000;
inline constexpr uint64_t kControlPageMagic = 0x4b434f4c57414854ULL;  // the bytes "THAWLOCK"

struct ControlPage {
  uint64_t magic = kControlPageMagic;
  uint64_t generation = 0;
  uint64_t clone_id = 0;
  uint64_t seed = 0;
  uint64_t wall_ns = 0;
  uint64_t clone_input = 0;
};
static_assert(sizeof(ControlPage) == 48);

// What a guest sees of `identity`. clone_input (a workload's parameter) is
// the seed: each hand-out gets different input.
ControlPage control_page_for(const CloneIdentity& identity);

// Writes the control page into `memory` (which must be paused).
void write_control_page(vmm::GuestMemory& memory, const ControlPage& page);
ControlPage read_control_page(vmm::GuestMemory& memory);

// Fresh identities: a global generation counter, unique clone ids, random
// seeds (getrandom, drawn in batches so a hand-out rarely makes a syscall)
// and CLOCK_REALTIME. Thread-safe.
class IdentityIssuer {
 public:
  CloneIdentity next();

 private:
  uint64_t random_seed();

  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_clone_id_{1};
  std::mutex seed_mutex_;
  uint64_t seeds_[64] = {};
  size_t seeds_left_ = 0;
};

}  // namespace thaw::pool
