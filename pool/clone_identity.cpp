#include "pool/clone_identity.h"

#include <sys/random.h>
#include <time.h>

#include "base/errors.h"

namespace thaw::pool {

ControlPage control_page_for(const CloneIdentity& identity) {
  ControlPage page;
  page.generation = identity.generation;
  page.clone_id = identity.clone_id;
  page.seed = identity.seed;
  page.wall_ns = identity.wall_ns;
  page.clone_input = identity.seed;
  return page;
}

CloneIdentity IdentityIssuer::next() {
  CloneIdentity id;
  id.generation = generation_.fetch_add(1, std::memory_order_relaxed) + 1;
  id.clone_id = next_clone_id_.fetch_add(clone_id_step_, std::memory_order_relaxed);
  id.seed = random_seed();
  id.wall_ns = vmm::wall_clock_ns();
  return id;
}

CloneIdentity IdentityIssuer::renew(CloneIdentity identity) {
  CloneIdentity fresh = next();
  identity.generation = fresh.generation;
  identity.seed = fresh.seed;
  identity.wall_ns = fresh.wall_ns;
  return identity;
}

uint64_t IdentityIssuer::random_seed() {
  std::lock_guard lock(seed_mutex_);
  if (seeds_left_ == 0) {
    auto* bytes = reinterpret_cast<char*>(seeds_);
    size_t got = 0;
    while (got < sizeof seeds_) {
      ssize_t n = ::getrandom(bytes + got, sizeof seeds_ - got, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw SysError("getrandom", errno, "clone seed");
      }
      got += static_cast<size_t>(n);
    }
    seeds_left_ = std::size(seeds_);
  }
  uint64_t seed = seeds_[--seeds_left_];
  seeds_[seeds_left_] = 0;  // a seed is handed out once
  return seed;
}

}  // namespace thaw::pool
