#include "vmm/control_page.h"

#include <sys/random.h>

#include <cerrno>
#include <ctime>

#include "base/errors.h"

namespace thaw::vmm {

uint64_t wall_clock_ns() {
  timespec now{};
  ::clock_gettime(CLOCK_REALTIME, &now);  // vDSO: no syscall
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
}

ControlPage fresh_control_page(uint64_t generation, uint64_t clone_id) {
  ControlPage page;
  page.generation = generation;
  page.clone_id = clone_id;
  if (::getrandom(&page.seed, sizeof page.seed, 0) != static_cast<ssize_t>(sizeof page.seed)) {
    throw SysError("getrandom", errno, "control page seed");
  }
  page.clone_input = page.seed;
  page.wall_ns = wall_clock_ns();
  return page;
}

void write_control_page(GuestMemory& memory, const ControlPage& page) {
  memory.write_obj(GuestAddress(kControlPageAddress), page, "control page");
}

ControlPage read_control_page(GuestMemory& memory) {
  return memory.read_obj<ControlPage>(GuestAddress(kControlPageAddress), "control page");
}

}  // namespace thaw::vmm
