#include "vmm/memory/private_pages.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/unique_fd.h"

namespace thaw::vmm {

namespace {

constexpr size_t kPage = 4096;

// /proc/self/pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst).
constexpr uint64_t kPagemapPresent = 1ull << 63;
constexpr uint64_t kPagemapSwapped = 1ull << 62;
constexpr uint64_t kPagemapFileOrShared = 1ull << 61;

// PAGEMAP_SCAN's ABI (include/uapi/linux/fs.h, Linux 6.7), spelled out
// because the build machine's headers may predate it.
struct PageRegion {
  uint64_t start, end, categories;
};
struct PmScanArg {
  uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
  uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
constexpr uint64_t kPageIsFile = 1 << 2;
constexpr uint64_t kPageIsPresent = 1 << 3;
constexpr uint64_t kPageIsSwapped = 1 << 4;
constexpr unsigned long kPagemapScan = _IOWR('f', 16, PmScanArg);

void add(std::vector<PageRun>& runs, size_t offset, size_t length) {
  if (!runs.empty() && runs.back().offset + runs.back().length == offset) {
    runs.back().length += length;
  } else {
    runs.push_back({offset, length});
  }
}

}  // namespace

bool scan_private_pages(uint8_t* base, size_t size, std::vector<PageRun>& runs, int pagemap_fd) {
  runs.clear();
  UniqueFd opened;
  if (pagemap_fd < 0) {
    opened.reset(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!opened.valid()) return false;
    pagemap_fd = opened.get();
  }
  const uint64_t begin = reinterpret_cast<uintptr_t>(base), end = begin + size;
  std::vector<PageRegion> regions(256);
  PmScanArg arg{};
  arg.size = sizeof arg;
  arg.start = begin;
  arg.end = end;
  // Not a file page, and present or swapped: a private copy.
  arg.category_inverted = kPageIsFile;
  arg.category_mask = kPageIsFile;
  arg.category_anyof_mask = kPageIsPresent | kPageIsSwapped;
  arg.return_mask = kPageIsPresent | kPageIsSwapped;
  while (arg.start < end) {
    arg.vec = reinterpret_cast<uintptr_t>(regions.data());
    arg.vec_len = regions.size();
    const int n = ::ioctl(pagemap_fd, kPagemapScan, &arg);
    if (n < 0) return false;  // ENOTTY before 6.7
    for (int i = 0; i < n; ++i) add(runs, regions[i].start - begin, regions[i].end - regions[i].start);
    if (arg.walk_end <= arg.start) return false;  // no progress: do not spin
    arg.start = arg.walk_end;
  }
  return true;
}

bool read_private_pages(uint8_t* base, size_t size, std::vector<PageRun>& runs) {
  runs.clear();
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (!pagemap.valid()) return false;
  const size_t pages = size / kPage;
  std::vector<uint64_t> entries(4096);
  for (size_t first = 0; first < pages; first += entries.size()) {
    const size_t n = std::min(entries.size(), pages - first);
    const off_t at = static_cast<off_t>((reinterpret_cast<uintptr_t>(base) / kPage + first) * sizeof(uint64_t));
    if (::pread(pagemap.get(), entries.data(), n * sizeof(uint64_t), at) != static_cast<ssize_t>(n * sizeof(uint64_t))) {
      return false;
    }
    for (size_t i = 0; i < n; ++i) {
      const uint64_t e = entries[i];
      if ((e & (kPagemapPresent | kPagemapSwapped)) != 0 && (e & kPagemapFileOrShared) == 0) {
        add(runs, (first + i) * kPage, kPage);
      }
    }
  }
  return true;
}

}  // namespace thaw::vmm
