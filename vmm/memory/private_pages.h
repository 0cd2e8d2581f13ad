// Which pages of a private mapping are private copies (written since it was
// mapped, or anonymous), so that a reset drops only those. Two ways to ask
// the kernel: the PAGEMAP_SCAN ioctl (Linux 6.7+: one call returns the runs)
// and reading /proc/self/pagemap (8 bytes a page, any kernel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace thaw::vmm {

struct PageRun {
  size_t offset = 0;  // bytes from the start of the range
  size_t length = 0;
  bool operator==(const PageRun&) const = default;
};

// Runs of private pages (present or swapped, not file pages) in
// [base, base + size), page-aligned and in order, replacing `runs`. False when the kernel
// cannot answer that way (the caller then tries the other or drops all).
// `pagemap_fd` is an open /proc/self/pagemap, for callers that ask about
// many ranges; -1 opens one for the call.
bool scan_private_pages(uint8_t* base, size_t size, std::vector<PageRun>& runs, int pagemap_fd = -1);  // PAGEMAP_SCAN
bool read_private_pages(uint8_t* base, size_t size, std::vector<PageRun>& runs);  // /proc/self/pagemap

}  // namespace thaw::vmm
