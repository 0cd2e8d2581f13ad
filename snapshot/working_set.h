// The working set: the guest pages a clone touched after it was restored,
// recorded once (a userfaultfd restore with recording on) and kept next to
// the snapshot as DIR/working-set. A later restore reads exactly those pages
// before the vCPU runs (prefetch_working_set), so the clone does not take a
// fault per page on its first steps.
//
// The file is untrusted input like the state file, but it can only ever
// choose *which* pages of the snapshot's own memory file are read early:
// the content always comes from the memory file, so a stale or foreign
// working set costs time, never correctness. File layout (little-endian):
//
//   offset  size  field
//        0     8  magic "THAWWSET"
//        8     4  format version (1)
//       12     4  page size in bytes (4096)
//       16     8  page count N
//       24     8  guest memory size in bytes it was recorded for
//       32     8  XXH3-64 of the N * 8 bytes that follow
//       40  N*8   page indices (offset / page size), strictly increasing
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/memory/guest_memory.h"
#include "base/errors.h"  // the errors this API throws

namespace thaw::snapshot {

inline constexpr char kWorkingSetFileName[] = "working-set";
inline constexpr uint32_t kWorkingSetVersion = 1;
inline constexpr uint32_t kWorkingSetHeaderBytes = 40;
inline constexpr uint64_t kWorkingSetPageBytes = 4096;

struct WorkingSet {
  uint64_t page_bytes = kWorkingSetPageBytes;
  std::vector<uint64_t> pages;  // page indices, sorted, unique

  uint64_t bytes() const { return pages.size() * page_bytes; }
};

// From a pager's recorded byte offsets (sorted, page-aligned; see
// vmm::UserfaultPager::recorded_pages()).
WorkingSet working_set_from_offsets(std::span<const uint64_t> offsets);

// Serialises `ws` for guest memory of `memory_size` bytes. Throws InputError
// for a working set a reader would reject (page size, order, range).
std::vector<uint8_t> encode_working_set(const WorkingSet& ws, uint64_t memory_size);
// Parses and validates a working-set file image for guest memory of
// `memory_size` bytes. Throws InputError naming the problem: truncated,
// bad magic, version or page size, too many pages, checksum, a page past
// the end of memory, pages out of order or repeated, a file recorded for
// another memory size.
WorkingSet decode_working_set(std::span<const uint8_t> file, uint64_t memory_size);

// Writes DIR/working-set atomically: working-set.tmp, fsync, rename, fsync
// the directory. `dir` must exist.
void write_working_set(const std::string& dir, const WorkingSet& ws, uint64_t memory_size);
// Reads DIR/working-set; nullopt when there is none. The size is checked
// against the most a valid file can be before anything is read.
std::optional<WorkingSet> read_working_set(const std::string& dir, uint64_t memory_size);

// A contiguous byte range of guest memory (and of the memory file).
struct PageRun {
  uint64_t offset = 0;
  uint64_t length = 0;
  bool operator==(const PageRun&) const = default;
};
// The working set as coalesced runs of adjacent pages, in order.
std::vector<PageRun> runs(const WorkingSet& ws);

struct PrefetchResult {
  uint64_t bytes = 0;
  uint64_t runs = 0;
  std::chrono::nanoseconds elapsed{0};
};

// Makes the working set's pages present in `memory` before the vCPU runs:
//  - kAnonymous (eager/uffd): reads exactly the runs from `memory_path` into
//    guest memory with io_uring, several reads in flight. For uffd, call
//    this BEFORE the pager registers the range: the pages are then present
//    and never fault.
//  - kPrivateFile: madvise(MADV_POPULATE_READ) on each run (MADV_WILLNEED
//    where the kernel has no POPULATE_READ), so the file pages are mapped.
// `backing` must be memory.backing(). Throws InputError for a page past the
// end of memory, SysError when a read or madvise fails.
PrefetchResult prefetch_working_set(vmm::GuestMemory& memory, const std::string& memory_path, const WorkingSet& ws,
                                    vmm::GuestMemory::Backing backing);

}  // namespace thaw::snapshot
