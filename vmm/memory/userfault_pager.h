// Serves guest RAM on demand with userfaultfd: the first touch of a page,
// by the guest or by KVM, blocks until a handler thread copies that page
// from a source file (a snapshot's memory file) into place.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "base/stack_thread.h"
#include "base/unique_fd.h"
#include "vmm/memory/guest_memory.h"

namespace thaw::vmm {

class UserfaultPager {
 public:
  // Registers all of `memory` (anonymous backing) in MISSING mode and starts
  // the handler. Pages are read from `source_path` at the same offset.
  // Throws SysError when userfaultfd is unavailable (e.g. not permitted).
  // With `record_pages`, every page it serves is remembered (see
  // recorded_pages()): the clone's working set.
  UserfaultPager(GuestMemory& memory, const std::string& source_path, bool record_pages = false);
  ~UserfaultPager();
  UserfaultPager(const UserfaultPager&) = delete;
  UserfaultPager& operator=(const UserfaultPager&) = delete;

  uint64_t pages_served() const { return pages_served_.load(std::memory_order_relaxed); }

  // Recording: from now on, remember the offset of every page served
  // (faults by the guest, by KVM, or by the VMM writing guest memory).
  void start_recording();
  bool recording() const { return recording_.load(std::memory_order_acquire); }
  // The byte offsets (page-aligned, from the start of guest RAM) of the
  // pages served while recording: sorted, each once. Safe to call while the
  // handler runs.
  std::vector<uint64_t> recorded_pages() const;

 private:
  void serve();

  uint8_t* base_;
  uint64_t size_;
  UniqueFd uffd_;
  UniqueFd source_;
  UniqueFd stop_event_;  // eventfd: wakes the handler to leave
  std::atomic<uint64_t> pages_served_{0};
  std::atomic<bool> recording_{false};
  mutable std::mutex recorded_mutex_;
  // Appended by the handler in fault order; sorted and deduplicated on read.
  mutable std::vector<uint64_t> recorded_;
  StackThread thread_;
};

}  // namespace thaw::vmm
