// Private memory per clone: smaps text parsed, and both sources measuring
// real private file mappings.
#include "pool/memory_usage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

#include "base/unique_fd.h"
#include "vmm/memory/private_pages.h"

namespace thaw::pool {
namespace {

constexpr const char* kSmaps =
    "7f0000000000-7f0008000000 rw-p 00000000 00:1a 1234                       /t/memory\n"
    "Size:             131072 kB\n"
    "Rss:                 400 kB\n"
    "Private_Clean:        40 kB\n"
    "Private_Dirty:       100 kB\n"
    "Anonymous:            96 kB\n"
    "Swap:                  8 kB\n"
    "VmFlags: rd wr mr mw me ac\n"
    "7f0008000000-7f0008001000 rw-p 00000000 00:00 0\n"
    "Anonymous:             4 kB\n"
    "7f1000000000-7f1008000000 rw-p 00000000 00:1a 1234                       /t/memory\n"
    "Private_Clean:         0 kB\n"
    "Anonymous:             8 kB\n"
    "7f1008000000-7f100c000000 rw-p 08000000 00:1a 1234                       /t/memory\n"
    "Anonymous:            12 kB\n";

TEST(MemoryUsage, SumsAnonymousAndSwappedPagesOfTheMappingsInEachRange) {
  std::vector<HostRange> ranges{{0x7f1000000000, 0x7f1010000000}, {0x7f0000000000, 0x7f0008000000}};
  auto bytes = private_bytes_in(kSmaps, ranges);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], (8 + 12) * 1024u) << "a mapping split in two VMAs counts whole";
  EXPECT_EQ(bytes[1], (96 + 8) * 1024u) << "file pages only this process maps (Private_Clean) are page cache, "
                                           "and the next mapping (not in a range) is not counted";
}

TEST(MemoryUsage, NoRangesOrGarbage) {
  EXPECT_TRUE(private_bytes_in(kSmaps, {}).empty());
  std::vector<HostRange> ranges{{0x1000, 0x2000}};
  EXPECT_EQ(private_bytes_in("garbage\n-\nPrivate_Dirty: x kB\n", ranges), std::vector<uint64_t>{0});
}

TEST(MemoryUsage, ReadsThisProcess) {
  std::string smaps = read_self_smaps();
  EXPECT_NE(smaps.find("Private_Dirty:"), std::string::npos);
}

// Two private mappings of one file, as two clones of a template map their
// memory file: some pages only read, some written.
class PrivateFileMappings : public ::testing::Test {
 protected:
  static constexpr size_t kPage = 4096, kPages = 64;

  void SetUp() override {
    char path[] = "/tmp/thaw-memory-usage-XXXXXX";
    file_ = UniqueFd(::mkstemp(path));
    ASSERT_TRUE(file_.valid());
    ::unlink(path);
    std::vector<char> page(kPage, 'm');
    for (size_t i = 0; i < kPages; ++i) ASSERT_EQ(::write(file_.get(), page.data(), kPage), ssize_t(kPage));
    for (auto*& mapping : mappings_) {
      void* p = ::mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE, file_.get(), 0);
      ASSERT_NE(p, MAP_FAILED);
      mapping = static_cast<char*>(p);
    }
    // The first mapping: 32 pages read, 10 written; the second: 3 written.
    volatile char sink = 0;
    for (size_t i = 0; i < 32; ++i) sink = sink + mappings_[0][i * kPage];
    for (size_t i = 40; i < 50; ++i) mappings_[0][i * kPage] = 'w';
    for (size_t i = 0; i < 3; ++i) mappings_[1][i * kPage + 7] = 'w';
  }
  void TearDown() override {
    for (auto* mapping : mappings_) {
      if (mapping) ::munmap(mapping, kPages * kPage);
    }
  }
  std::vector<HostRange> ranges() const {
    std::vector<HostRange> out;
    for (auto* mapping : mappings_) {
      auto start = reinterpret_cast<uintptr_t>(mapping);
      out.push_back({start, start + kPages * kPage});
    }
    return out;
  }

  UniqueFd file_;
  char* mappings_[2] = {nullptr, nullptr};
};

TEST_F(PrivateFileMappings, SmapsCountsTheWrittenPagesOnly) {
  auto sample = measure_private_memory_from_smaps(ranges());
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->source, PrivateMemorySource::kSmaps);
  EXPECT_EQ(sample->bytes, (std::vector<uint64_t>{10 * kPage, 3 * kPage}));
}

TEST_F(PrivateFileMappings, PagemapScanCountsWhatSmapsCounts) {
  std::vector<vmm::PageRun> probe;
  if (!vmm::scan_private_pages(reinterpret_cast<uint8_t*>(mappings_[1]), kPage, probe)) {
    GTEST_SKIP() << "PAGEMAP_SCAN needs Linux 6.7 or later; measure_private_memory reads smaps here";
  }
  auto sample = measure_private_memory(ranges());
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->source, PrivateMemorySource::kPagemapScan);
  EXPECT_EQ(sample->bytes, (std::vector<uint64_t>{10 * kPage, 3 * kPage}));
}

TEST_F(PrivateFileMappings, AnUnmappedRangeCountsNothing) {
  auto gone = ranges()[1];
  ::munmap(mappings_[1], kPages * kPage);
  mappings_[1] = nullptr;
  std::vector<HostRange> both{ranges()[0], gone};
  auto sample = measure_private_memory(both);
  ASSERT_TRUE(sample.has_value());
  EXPECT_EQ(sample->bytes, (std::vector<uint64_t>{10 * kPage, 0}));
}

}  // namespace
}  // namespace thaw::pool
