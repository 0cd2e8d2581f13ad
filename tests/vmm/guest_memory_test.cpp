#include "vmm/memory/guest_memory.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <vector>

#include <gtest/gtest.h>

#include "synthetic_images.h"
#include "vmm/memory/private_pages.h"
#include "base/errors.h"

namespace thaw::vmm {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kGiB = 1ull << 30;

TEST(PlanRamRegions, SmallRamIsOneRegionFromZero) {
  auto r = plan_ram_regions(128 * kMiB);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].guest_start.value, 0u);
  EXPECT_EQ(r[0].size, 128 * kMiB);
  EXPECT_EQ(r[0].file_offset, 0u);
}

TEST(PlanRamRegions, ExactlyThreeGiBStaysBelowTheGap) {
  auto r = plan_ram_regions(3 * kGiB);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].guest_end().value, kMmioGapStart);
}

TEST(PlanRamRegions, LargeRamIsSplitAroundTheMmioGap) {
  auto r = plan_ram_regions(5 * kGiB);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].guest_start.value, 0u);
  EXPECT_EQ(r[0].guest_end().value, kMmioGapStart);
  EXPECT_EQ(r[1].guest_start.value, kMmioGapEnd);
  EXPECT_EQ(r[1].size, 2 * kGiB);
  // The file continues where the low region stopped: no file bytes are wasted on the gap.
  EXPECT_EQ(r[1].file_offset, 3 * kGiB);
}

TEST(GuestMemory, RejectsZeroAndUnalignedSizes) {
  EXPECT_THROW(GuestMemory::create(0), InputError);
  EXPECT_THROW(GuestMemory::create(128 * kMiB + 1), InputError);
}

TEST(GuestMemory, WritesAndReadsBackObjects) {
  auto mem = GuestMemory::create(128 * kMiB);
  EXPECT_EQ(mem.size(), 128 * kMiB);
  mem.write_obj(GuestAddress(0x1000), uint64_t{0x1122334455667788});
  EXPECT_EQ(mem.read_obj<uint64_t>(GuestAddress(0x1000)), 0x1122334455667788u);
  EXPECT_EQ(mem.host_base()[0x1000], 0x88);
  // The last byte of RAM is addressable.
  mem.write_obj(GuestAddress(128 * kMiB - 1), uint8_t{0x5a});
  EXPECT_EQ(mem.read_obj<uint8_t>(GuestAddress(128 * kMiB - 1)), 0x5a);
}

TEST(GuestMemory, SliceOutsideRamNamesTheRange) {
  auto mem = GuestMemory::create(128 * kMiB);
  EXPECT_TRUE(mem.contains(GuestAddress(0), 128 * kMiB));
  EXPECT_FALSE(mem.contains(GuestAddress(128 * kMiB - 4), 8));
  auto msg = testing::input_error_of([&] { mem.slice(GuestAddress(128 * kMiB - 4), 8, "kernel segment 2"); });
  EXPECT_CONTAINS(msg, "kernel segment 2");
  EXPECT_CONTAINS(msg, "[0x7fffffc, 0x8000004)");
  EXPECT_CONTAINS(msg, "outside guest RAM (128 MiB)");
  EXPECT_THROW(mem.slice(GuestAddress(256 * kMiB), 1), InputError);
  // A huge length must not wrap around.
  EXPECT_THROW(mem.slice(GuestAddress(0x1000), ~uint64_t{0}), InputError);
}

TEST(GuestMemory, HighRegionIsBackedAfterTheLowOne) {
  // Only address space: MAP_NORESERVE keeps this cheap.
  auto mem = GuestMemory::create(5 * kGiB);
  ASSERT_EQ(mem.regions().size(), 2u);
  EXPECT_FALSE(mem.contains(GuestAddress(kMmioGapStart), 1));
  EXPECT_THROW(mem.slice(GuestAddress(kMmioGapStart - 4), 8), InputError);
  EXPECT_THROW(mem.slice(GuestAddress(0xd000'0000), 1), InputError);
  mem.write_obj(GuestAddress(kMmioGapEnd), uint32_t{0xabcd1234});
  uint32_t v;
  std::memcpy(&v, mem.host_base() + 3 * kGiB, sizeof v);
  EXPECT_EQ(v, 0xabcd1234u);
}

}  // namespace
}  // namespace thaw::vmm

namespace thaw::vmm {
namespace {

// Whether the page at `p` is mapped into this process (pagemap bit 63).
bool page_present(const uint8_t* p) {
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  uint64_t entry = 0;
  const off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / 4096 * sizeof entry);
  if (!pagemap.valid() || ::pread(pagemap.get(), &entry, sizeof entry, at) != sizeof entry) return false;
  return (entry >> 63) != 0;
}

// `bytes` of a sparse temporary file (all zero), mapped the way a clone maps
// its snapshot's memory file. The file is gone once mapped.
GuestMemory map_sparse_file_privately(size_t bytes) {
  char path[] = "/tmp/thaw-guest-memory-XXXXXX";
  UniqueFd file(::mkstemp(path));
  if (!file.valid()) throw std::runtime_error("mkstemp failed");
  struct UnlinkOnReturn {
    const char* path;
    ~UnlinkOnReturn() { ::unlink(path); }
  } unlink_on_return{path};
  if (::ftruncate(file.get(), static_cast<off_t>(bytes)) != 0) throw std::runtime_error("ftruncate failed");
  return GuestMemory::map_private_file(path, bytes);
}

// A reset drops what was written (the file's bytes come back) but keeps the
// pages that were only read mapped: re-faulting them costs a shadow-MMU
// fault each on PVM, on every request.
TEST(GuestMemoryDiscard, WrittenPagesReadTheFileAgainAndReadPagesStayMapped) {
  char path[] = "/tmp/thaw-guest-memory-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file.valid());
  std::vector<uint8_t> image(16 * 4096);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i / 4096 + 1);
  ASSERT_EQ(::write(file.get(), image.data(), image.size()), static_cast<ssize_t>(image.size()));
  auto memory = GuestMemory::map_private_file(path, image.size());
  ::unlink(path);
  uint8_t* base = memory.host_base();
  volatile uint8_t read_byte = base[3 * 4096];  // page 3: read only
  (void)read_byte;
  base[5 * 4096] = 0xee;  // pages 5 and 9: written
  base[9 * 4096 + 7] = 0xdd;
  ASSERT_TRUE(page_present(base + 3 * 4096));

  memory.discard_private_pages();
  EXPECT_EQ(base[5 * 4096], 6) << "the written page reads the file again";
  EXPECT_EQ(base[9 * 4096 + 7], 10);
  EXPECT_TRUE(page_present(base + 3 * 4096)) << "a page that was only read is not unmapped";
  EXPECT_EQ(base[3 * 4096], 4);
}

// A pool maps its template's memory file from the one descriptor it opened:
// the mapping outlives the descriptor, and a file whose size is not the
// state's is refused with the name given.
TEST(GuestMemoryFromFd, MapsAnOpenFileThatMayThenBeClosed) {
  char path[] = "/tmp/thaw-guest-memory-XXXXXX";
  UniqueFd file(::mkstemp(path));
  ASSERT_TRUE(file.valid());
  ::unlink(path);
  std::vector<uint8_t> image(4 * 4096, 0x5a);
  ASSERT_EQ(::write(file.get(), image.data(), image.size()), static_cast<ssize_t>(image.size()));
  auto memory = GuestMemory::map_private_file(file.get(), "template memory", image.size());
  file.reset();
  EXPECT_EQ(memory.backing(), GuestMemory::Backing::kPrivateFile);
  EXPECT_EQ(memory.fd(), -1) << "the mapping holds the file; no descriptor a clone";
  EXPECT_EQ(memory.host_base()[3 * 4096 + 1], 0x5a);
  memory.host_base()[0] = 1;  // private: the file is not written
  EXPECT_EQ(memory.host_base()[0], 1);

  char other_path[] = "/tmp/thaw-guest-memory-XXXXXX";
  UniqueFd other(::mkstemp(other_path));
  ASSERT_TRUE(other.valid());
  ::unlink(other_path);
  ASSERT_EQ(::ftruncate(other.get(), 4096), 0);
  try {
    (void)GuestMemory::map_private_file(other.get(), "template memory", 2 * 4096);
    FAIL() << "a file of the wrong size was mapped";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("memory file template memory is 4096 bytes, the state says 8192"),
              std::string::npos)
        << e.what();
  }
}

// Both ways of asking the kernel which pages are private copies give the
// same runs (PAGEMAP_SCAN needs Linux 6.7; skipped where it is missing).
TEST(PrivatePages, ScanAndPagemapAgreeOnWrittenRuns) {
  auto memory = map_sparse_file_privately(64 * 4096);
  uint8_t* base = memory.host_base();
  for (size_t page : {1, 2, 3, 10, 40, 63}) base[page * 4096] = 1;  // written: private copies
  volatile uint8_t sink = base[20 * 4096];                          // read only: a file page
  (void)sink;
  std::vector<PageRun> read_runs;
  ASSERT_TRUE(read_private_pages(base, 64 * 4096, read_runs));
  const std::vector<PageRun> expected = {{4096, 3 * 4096}, {10 * 4096, 4096}, {40 * 4096, 4096}, {63 * 4096, 4096}};
  EXPECT_EQ(read_runs, expected);
  std::vector<PageRun> scan_runs;
  if (!scan_private_pages(base, 64 * 4096, scan_runs)) GTEST_SKIP() << "PAGEMAP_SCAN needs Linux 6.7 or later";
  EXPECT_EQ(scan_runs, expected);
}

// Clones of a template all map one file: its mapping must not read ahead
// (large page-cache folios whose one lock every clone's faults wait for).
// The kernel shows MADV_RANDOM as "rr" among the mapping's VmFlags.
TEST(GuestMemoryPrivateFile, MappingIsAdvisedRandomRead) {
  auto memory = map_sparse_file_privately(16 * 4096);
  char start[32];
  std::snprintf(start, sizeof start, "%lx-", reinterpret_cast<unsigned long>(memory.host_base()));
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_mapping = false;
  std::string flags;
  while (std::getline(smaps, line)) {
    if (line.find('-') != std::string::npos && line.find(' ') > line.find('-') && std::isxdigit(line[0])) {
      in_mapping = line.rfind(start, 0) == 0;
    } else if (in_mapping && line.rfind("VmFlags:", 0) == 0) {
      flags = line;
    }
  }
  ASSERT_FALSE(flags.empty()) << "no smaps entry for the mapping at " << start;
  EXPECT_NE(flags.find(" rr"), std::string::npos) << flags;
}

}  // namespace
}  // namespace thaw::vmm
