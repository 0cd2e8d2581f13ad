// A clone's identity, handed to it at acquire without a guest round trip:
// the VMM writes the guest's control page (guest/mini/README.md, "The
// control page") while the clone is still paused, then resumes it.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "pool/pool_types.h"
#include "vmm/control_page.h"

namespace thaw::pool {

// The control page itself lives with the VM (vmm/control_page.h).
using vmm::ControlPage;
using vmm::kControlPageAddress;
using vmm::kControlPageMagic;
using vmm::read_control_page;
using vmm::write_control_page;

// What a guest sees of `identity`. clone_input (a workload's parameter) is
// the seed: each hand-out gets different input.
ControlPage control_page_for(const CloneIdentity& identity);

// Fresh identities: a global generation counter, unique clone ids, random
// seeds (getrandom, drawn in batches so a hand-out rarely makes a syscall)
// and CLOCK_REALTIME. Thread-safe.
class IdentityIssuer {
 public:
  // Clone ids are first, first + step, ...: each shard of a template
  // (pool_shard.h) issues its own, disjoint from the others'.
  explicit IdentityIssuer(uint64_t first_clone_id = 1, uint64_t step = 1)
      : next_clone_id_(first_clone_id), clone_id_step_(step) {}
  CloneIdentity next();
  // `identity` with a new generation, seed and clock, its clone id kept:
  // a second request in one lease never draws the first one's random bytes.
  CloneIdentity renew(CloneIdentity identity);

 private:
  uint64_t random_seed();

  std::atomic<uint64_t> generation_{0};
  std::atomic<uint64_t> next_clone_id_;
  const uint64_t clone_id_step_;
  std::mutex seed_mutex_;
  uint64_t seeds_[64] = {};
  size_t seeds_left_ = 0;
};

}  // namespace thaw::pool
