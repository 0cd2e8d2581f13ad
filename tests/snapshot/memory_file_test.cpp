#include "snapshot/memory_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <xxhash.h>

#include <fstream>
#include <vector>

#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::expect_input_error;
using test::TempDir;

constexpr uint64_t kChunk = 64 * 1024;

// 32 chunks of 64 KiB: a few with data (one only in its last byte), the rest zero.
std::vector<uint8_t> sample_memory() {
  std::vector<uint8_t> mem(32 * kChunk, 0);
  for (uint64_t i = 0; i < kChunk; ++i) mem[i] = static_cast<uint8_t>(i * 31 + 7);    // chunk 0
  mem[5 * kChunk + 123] = 0xaa;                                                         // chunk 5
  mem[18 * kChunk - 1] = 0x01;                                                          // chunk 17, last byte
  for (uint64_t i = 30 * kChunk; i < 31 * kChunk; i += 4096) mem[i] = 0x55;             // chunk 30
  return mem;
}

MemoryLayout layout_for(const std::vector<uint8_t>& mem, const MemoryWriteResult& written) {
  MemoryLayout layout = MemoryLayout::for_ram(mem.size(), kChunk);
  layout.chunk_hashes = written.chunk_hashes;
  return layout;
}

void flip_byte(const std::string& path, uint64_t offset) {
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  uint8_t b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x80;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

// Pages of `path` in the page cache (mincore on a read-only mapping; the
// test owns the file, so the kernel reports the cache and not just this
// process's page tables).
size_t cached_pages(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return SIZE_MAX;
  struct stat st {};
  ::fstat(fd, &st);
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) return SIZE_MAX;
  std::vector<unsigned char> resident((size + 4095) / 4096);
  size_t n = ::mincore(map, size, resident.data()) == 0 ? 0 : SIZE_MAX;
  for (unsigned char r : resident) n += r & 1;
  ::munmap(map, size);
  return n;
}

// Clones map the file privately and must fault in small folios, not the
// large ones that writing and reading it leave in the page cache.
TEST(MemoryFile, WritingAndDroppingLeaveNothingCached) {
  TempDir dir;
  struct statfs fs {};
  ASSERT_EQ(::statfs(dir.path().c_str(), &fs), 0);
  if (fs.f_type == TMPFS_MAGIC) GTEST_SKIP() << "tmpfs keeps its pages: nothing to drop";
  auto mem = sample_memory();
  const std::string path = dir / "memory";
  auto written = write_memory_file(path, mem, kChunk, 4);
  EXPECT_EQ(cached_pages(path), 0u) << "the written file's pages stay cached";
  verify_memory_file(path, layout_for(mem, written));  // reads it all
  ASSERT_GT(cached_pages(path), 0u);
  drop_cached_pages(path);
  EXPECT_EQ(cached_pages(path), 0u);
  EXPECT_THROW(drop_cached_pages(dir / "missing"), SysError);
}

TEST(MemoryFile, ZeroChunkHashMatchesHashingZeros) {
  std::vector<uint8_t> zeros(3 * 65536 + 4096, 0);
  EXPECT_EQ(zero_chunk_hash(zeros.size()), XXH3_64bits(zeros.data(), zeros.size()));
  EXPECT_EQ(zero_chunk_hash(4096), XXH3_64bits(zeros.data(), 4096));
}

TEST(MemoryFile, WriteSkipsZeroChunksAndHashesEveryChunk) {
  TempDir dir;
  auto mem = sample_memory();
  auto result = write_memory_file(dir / "memory", mem, kChunk, 4);

  EXPECT_EQ(result.bytes_written, 4 * kChunk);
  EXPECT_EQ(result.zero_chunks, 28u);
  ASSERT_EQ(result.chunk_hashes.size(), 32u);
  for (uint64_t i = 0; i < 32; ++i) {
    EXPECT_EQ(result.chunk_hashes[i], XXH3_64bits(mem.data() + i * kChunk, kChunk)) << "chunk " << i;
  }
  EXPECT_GT(result.elapsed.count(), 0);

  struct stat st {};
  ASSERT_EQ(::stat((dir / "memory").c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), mem.size());
  // Sparse: 28 of 32 chunks are holes (st_blocks counts 512-byte units).
  EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, mem.size() / 2);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(MemoryFile, ReadBackIntoMemoryIsIdentical) {
  TempDir dir;
  auto mem = sample_memory();
  auto layout = layout_for(mem, write_memory_file(dir / "memory", mem, kChunk, 3));

  std::vector<uint8_t> back(mem.size(), 0xee);  // not zero: holes must be read as zeros
  read_memory_file_into(dir / "memory", back, layout, {.queue_depth = 3});
  EXPECT_EQ(back, mem);

  std::vector<uint8_t> zeroed(mem.size(), 0);
  read_memory_file_into(dir / "memory", zeroed, layout, {.queue_depth = 8, .dest_is_zeroed = true});
  EXPECT_EQ(zeroed, mem);
  EXPECT_NO_THROW(verify_memory_file(dir / "memory", layout, 5));
}

TEST(MemoryFile, ShortLastChunkRoundTrips) {
  TempDir dir;
  std::vector<uint8_t> mem(kChunk * 2 + 4096 * 3, 0);
  mem[kChunk * 2 + 5] = 9;
  auto written = write_memory_file(dir / "memory", mem, kChunk);
  ASSERT_EQ(written.chunk_hashes.size(), 3u);
  EXPECT_EQ(written.chunk_hashes[2], XXH3_64bits(mem.data() + 2 * kChunk, 4096 * 3));
  EXPECT_EQ(written.chunk_hashes[0], zero_chunk_hash(kChunk));
  auto layout = layout_for(mem, written);
  std::vector<uint8_t> back(mem.size(), 1);
  read_memory_file_into(dir / "memory", back, layout);
  EXPECT_EQ(back, mem);
}

TEST(MemoryFile, OverwriteTruncatesTheOldContent) {
  TempDir dir;
  std::vector<uint8_t> full(8 * kChunk, 0x77);
  write_memory_file(dir / "memory", full, kChunk);
  std::vector<uint8_t> zeros(4 * kChunk, 0);
  auto layout = layout_for(zeros, write_memory_file(dir / "memory", zeros, kChunk));
  EXPECT_NO_THROW(verify_memory_file(dir / "memory", layout));
}

TEST(MemoryFile, VerifyNamesTheFirstFlippedChunk) {
  TempDir dir;
  auto mem = sample_memory();
  auto layout = layout_for(mem, write_memory_file(dir / "memory", mem, kChunk));
  flip_byte(dir / "memory", 30 * kChunk + 17);
  flip_byte(dir / "memory", 5 * kChunk + 123);
  expect_input_error([&] { verify_memory_file(dir / "memory", layout); },
                     "chunk 5 (bytes 327680..393216) has XXH3");
  std::vector<uint8_t> dest(mem.size());
  expect_input_error([&] { read_memory_file_into(dir / "memory", dest, layout); }, "chunk 5 (bytes");
}

TEST(MemoryFile, VerifyCatchesDataWhereTheStateSaysZero) {
  TempDir dir;
  auto mem = sample_memory();
  auto layout = layout_for(mem, write_memory_file(dir / "memory", mem, kChunk));
  flip_byte(dir / "memory", 9 * kChunk);  // a hole gets a byte
  expect_input_error([&] { verify_memory_file(dir / "memory", layout); }, "chunk 9 ");
}

TEST(MemoryFile, ReadWithoutVerifyDoesNotCheckHashes) {
  TempDir dir;
  auto mem = sample_memory();
  auto layout = layout_for(mem, write_memory_file(dir / "memory", mem, kChunk));
  flip_byte(dir / "memory", 100);
  std::vector<uint8_t> dest(mem.size());
  EXPECT_NO_THROW(read_memory_file_into(dir / "memory", dest, layout, {.verify_hashes = false}));
  EXPECT_EQ(dest[100], mem[100] ^ 0x80);
}

TEST(MemoryFile, ShortFileRejectedBeforeReading) {
  TempDir dir;
  auto mem = sample_memory();
  auto layout = layout_for(mem, write_memory_file(dir / "memory", mem, kChunk));
  ASSERT_EQ(::truncate((dir / "memory").c_str(), static_cast<off_t>(mem.size() - 4096)), 0);
  std::string expected = "is " + std::to_string(mem.size() - 4096) + " bytes, the state says " +
                         std::to_string(mem.size());
  expect_input_error([&] { verify_memory_file(dir / "memory", layout); }, expected);
  std::vector<uint8_t> dest(mem.size(), 0x33);
  expect_input_error([&] { read_memory_file_into(dir / "memory", dest, layout); }, expected);
  EXPECT_EQ(dest[0], 0x33) << "nothing may be read from a file of the wrong size";
}

TEST(MemoryFile, BadArgumentsAreNamed) {
  TempDir dir;
  std::vector<uint8_t> mem(kChunk, 1);
  expect_input_error([&] { write_memory_file(dir / "m", mem, 3000); }, "chunk size 3000");
  expect_input_error([&] { write_memory_file(dir / "m", {}, kChunk); }, "is empty");
  expect_input_error([&] { write_memory_file(dir / "m", mem, kChunk, 0); }, "queue depth is 0");
  auto layout = MemoryLayout::for_ram(kChunk, kChunk);
  expect_input_error([&] { verify_memory_file(dir / "m", layout); }, "0 chunk hashes for 1 chunks");
}

TEST(MemoryFile, MissingFileIsASysErrorWithThePath) {
  TempDir dir;
  auto layout = MemoryLayout::for_ram(kChunk, kChunk);
  layout.chunk_hashes = {zero_chunk_hash(kChunk)};
  try {
    verify_memory_file(dir / "absent", layout);
    FAIL() << "no error";
  } catch (const SysError& e) {
    EXPECT_EQ(e.error_number(), ENOENT);
    EXPECT_NE(std::string(e.what()).find(dir / "absent"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace thaw::snapshot
