// The working-set file: round trip, coalescing into runs, and every
// malformed file rejected with a message that names the problem.
#include "snapshot/working_set.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <xxhash.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/snapshot/snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::expect_input_error;

constexpr uint64_t kMemory = 16ull << 20;  // 4096 pages

WorkingSet make_set(std::vector<uint64_t> pages) {
  WorkingSet ws;
  ws.pages = std::move(pages);
  return ws;
}

// Overwrites a u64 in the file image and, unless told otherwise, fixes the
// checksum so the check under test is the one that fires.
void put_u64(std::vector<uint8_t>& file, size_t offset, uint64_t value) {
  std::memcpy(file.data() + offset, &value, 8);
}
void put_u32(std::vector<uint8_t>& file, size_t offset, uint32_t value) {
  std::memcpy(file.data() + offset, &value, 4);
}
void fix_checksum(std::vector<uint8_t>& file) {
  put_u64(file, 32, XXH3_64bits(file.data() + kWorkingSetHeaderBytes, file.size() - kWorkingSetHeaderBytes));
}

std::vector<uint8_t> with_pages(const std::vector<uint64_t>& pages) {
  // Encoded by hand: encode_working_set refuses what these tests feed the reader.
  std::vector<uint8_t> file = encode_working_set(make_set({}), kMemory);
  put_u64(file, 16, pages.size());
  file.resize(kWorkingSetHeaderBytes + pages.size() * 8);
  if (!pages.empty()) std::memcpy(file.data() + kWorkingSetHeaderBytes, pages.data(), pages.size() * 8);
  fix_checksum(file);
  return file;
}

TEST(WorkingSetFile, RoundTripsThroughBytesAndDirectory) {
  auto ws = make_set({0, 1, 2, 7, 100, 4095});
  auto bytes = encode_working_set(ws, kMemory);
  EXPECT_EQ(bytes.size(), kWorkingSetHeaderBytes + 6 * 8);
  EXPECT_EQ(std::memcmp(bytes.data(), "THAWWSET", 8), 0);
  EXPECT_EQ(decode_working_set(bytes, kMemory).pages, ws.pages);

  test::TempDir dir;
  EXPECT_FALSE(read_working_set(dir.path(), kMemory).has_value()) << "absent file is not an error";
  write_working_set(dir.path(), ws, kMemory);
  auto back = read_working_set(dir.path(), kMemory);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->pages, ws.pages);
  EXPECT_EQ(back->page_bytes, 4096u);
  EXPECT_FALSE(std::filesystem::exists(dir / "working-set.tmp"));

  // Replaced atomically; an empty set is valid.
  write_working_set(dir.path(), make_set({}), kMemory);
  back = read_working_set(dir.path(), kMemory);
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->pages.empty());
}

TEST(WorkingSetFile, FromRecordedOffsets) {
  std::vector<uint64_t> offsets = {0, 4096, 0x200000, 0x201000};
  EXPECT_EQ(working_set_from_offsets(offsets).pages, (std::vector<uint64_t>{0, 1, 0x200, 0x201}));
}

TEST(WorkingSetFile, RunsCoalesceAdjacentPages) {
  EXPECT_TRUE(runs(make_set({})).empty());
  EXPECT_EQ(runs(make_set({5})), (std::vector<PageRun>{{5 * 4096, 4096}}));
  EXPECT_EQ(runs(make_set({0, 1, 2, 4, 6, 7})),
            (std::vector<PageRun>{{0, 3 * 4096}, {4 * 4096, 4096}, {6 * 4096, 2 * 4096}}));
  std::vector<uint64_t> all(4096);
  for (uint64_t i = 0; i < all.size(); ++i) all[i] = i;
  EXPECT_EQ(runs(make_set(all)), (std::vector<PageRun>{{0, kMemory}}));
}

TEST(WorkingSetFile, WriterRefusesWhatAReaderWouldReject) {
  test::TempDir dir;
  expect_input_error([&] { write_working_set(dir.path(), make_set({3, 2}), kMemory); }, "not sorted");
  expect_input_error([&] { write_working_set(dir.path(), make_set({2, 2}), kMemory); }, "repeated");
  expect_input_error([&] { write_working_set(dir.path(), make_set({4096}), kMemory); }, "past the end");
  WorkingSet big_pages = make_set({1});
  big_pages.page_bytes = 2 << 20;
  expect_input_error([&] { write_working_set(dir.path(), big_pages, kMemory); }, "page size");
  EXPECT_FALSE(std::filesystem::exists(dir / "working-set"));
  expect_input_error([&] { write_working_set(dir / "missing", make_set({1}), kMemory); }, "does not exist");
}

TEST(WorkingSetFile, RejectsEveryMalformedFile) {
  const std::vector<uint8_t> good = with_pages({1, 2, 3});
  ASSERT_EQ(decode_working_set(good, kMemory).pages, (std::vector<uint64_t>{1, 2, 3}));

  expect_input_error([&] { decode_working_set({}, kMemory); }, "truncated");
  expect_input_error([&] { decode_working_set(std::span(good).first(39), kMemory); }, "truncated");
  expect_input_error([&] { decode_working_set(std::span(good).first(good.size() - 1), kMemory); }, "truncated");
  {
    auto f = good;
    f.push_back(0);
    expect_input_error([&] { decode_working_set(f, kMemory); }, "trailing");
  }
  {
    auto f = good;
    f[0] = 'X';
    expect_input_error([&] { decode_working_set(f, kMemory); }, "bad magic");
  }
  {
    auto f = good;
    put_u32(f, 8, 2);
    expect_input_error([&] { decode_working_set(f, kMemory); }, "format version 2");
  }
  {
    auto f = good;
    put_u32(f, 12, 2 << 20);
    expect_input_error([&] { decode_working_set(f, kMemory); }, "page size 2097152");
  }
  {
    auto f = good;
    put_u64(f, 24, kMemory * 2);
    expect_input_error([&] { decode_working_set(f, kMemory); }, "recorded for 33554432 bytes");
  }
  {
    auto f = good;
    put_u64(f, 16, 4097);  // more pages than memory has, before the size is looked at
    expect_input_error([&] { decode_working_set(f, kMemory); }, "page count 4097");
  }
  {
    auto f = good;
    put_u64(f, 16, UINT64_MAX / 4);  // would overflow count * 8
    expect_input_error([&] { decode_working_set(f, kMemory); }, "page count");
  }
  {
    auto f = good;
    f.back() ^= 1;  // page 3 becomes 3 ^ (1 << 56), checksum left stale
    expect_input_error([&] { decode_working_set(f, kMemory); }, "checksum");
  }
  expect_input_error(
      [&] {
        decode_working_set(with_pages({1, 4096}), kMemory);
      },
      "page index 4096 (entry 1) is past the end");
  expect_input_error([&] { decode_working_set(with_pages({1, 1}), kMemory); }, "page index 1 is repeated");
  expect_input_error([&] { decode_working_set(with_pages({2, 1}), kMemory); }, "not sorted");
}

TEST(WorkingSetFile, ReaderNamesTheFileAndCapsItsSize) {
  test::TempDir dir;
  auto write_raw = [&](const std::vector<uint8_t>& bytes) {
    std::ofstream(dir / "working-set", std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  };
  write_raw(with_pages({9, 8}));
  expect_input_error([&] { read_working_set(dir.path(), kMemory); }, dir / "working-set");
  // Bigger than a set of every page: refused before it is read.
  write_raw(std::vector<uint8_t>(kWorkingSetHeaderBytes + 4096 * 8 + 1));
  expect_input_error([&] { read_working_set(dir.path(), kMemory); }, "more than a working set of every page");
  std::filesystem::remove(dir / "working-set");
  std::filesystem::create_directory(dir / "working-set");
  expect_input_error([&] { read_working_set(dir.path(), kMemory); }, "not a regular file");
}

TEST(WorkingSetPrefetch, AnonymousMemoryGetsExactlyTheWorkingSetPages) {
  test::TempDir dir;
  const uint64_t size = 1 << 20;  // 256 pages
  std::vector<uint8_t> image(size);
  for (size_t i = 0; i < image.size(); ++i) image[i] = static_cast<uint8_t>(i / 4096 + 1);
  const std::string path = dir / "memory";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(image.data()), size);

  auto memory = vmm::GuestMemory::anonymous(size);
  std::vector<uint64_t> pages = {0, 1, 2, 10, 200, 201, 255};
  auto result = prefetch_working_set(memory, path, make_set(pages), memory.backing());
  EXPECT_EQ(result.bytes, pages.size() * 4096);
  EXPECT_EQ(result.runs, 4u);
  std::vector<unsigned char> resident(size / 4096);
  ASSERT_EQ(::mincore(memory.host_base(), size, resident.data()), 0);
  for (uint64_t p = 0; p < size / 4096; ++p) {
    bool in_set = std::find(pages.begin(), pages.end(), p) != pages.end();
    EXPECT_EQ(resident[p] & 1, in_set ? 1 : 0) << "page " << p;
    if (in_set) {
      EXPECT_EQ(std::memcmp(memory.host_base() + p * 4096, image.data() + p * 4096, 4096), 0) << "page " << p;
    }
  }
  expect_input_error([&] { prefetch_working_set(memory, path, make_set({256}), memory.backing()); }, "past the end");
}

TEST(WorkingSetPrefetch, PrivateFileMappingIsPopulated) {
  test::TempDir dir;
  const uint64_t size = 1 << 20;
  std::vector<uint8_t> image(size, 0x5a);
  const std::string path = dir / "memory";
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(image.data()), size);
  auto memory = vmm::GuestMemory::map_private_file(path, size);
  auto result = prefetch_working_set(memory, path, make_set({3, 4, 100}), memory.backing());
  EXPECT_EQ(result.bytes, 3u * 4096);
  EXPECT_EQ(result.runs, 2u);
  EXPECT_EQ(memory.host_base()[3 * 4096], 0x5a);
  EXPECT_EQ(memory.host_base()[100 * 4096 + 4095], 0x5a);
}

}  // namespace
}  // namespace thaw::snapshot
