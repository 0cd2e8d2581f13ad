// Serves guest RAM on demand with userfaultfd: the first touch of a page,
// by the guest or by KVM, blocks until a handler thread copies that page
// from a source file (a snapshot's memory file) into place.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>

#include "vmm/memory/guest_memory.h"
#include "vmm/unique_fd.h"

namespace thaw::vmm {

class UserfaultPager {
 public:
  // Registers all of `memory` (anonymous backing) in MISSING mode and starts
  // the handler. Pages are read from `source_path` at the same offset.
  // Throws SysError when userfaultfd is unavailable (e.g. not permitted).
  UserfaultPager(GuestMemory& memory, const std::string& source_path);
  ~UserfaultPager();
  UserfaultPager(const UserfaultPager&) = delete;
  UserfaultPager& operator=(const UserfaultPager&) = delete;

  uint64_t pages_served() const { return pages_served_.load(std::memory_order_relaxed); }

 private:
  void serve();

  uint8_t* base_;
  uint64_t size_;
  UniqueFd uffd_;
  UniqueFd source_;
  UniqueFd stop_event_;  // eventfd: wakes the handler to leave
  std::atomic<uint64_t> pages_served_{0};
  std::thread thread_;
};

}  // namespace thaw::vmm
