#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "cpio_reader.h"
#include "runtime_fixture.h"

namespace thaw_guest_test {
namespace {

int32_t find(const cpio_index &index, const std::string &name) {
  return cpio_index_find(&index, name.data(), static_cast<uint32_t>(name.size()));
}

TEST(CpioReader, IndexesFilesWithNormalizedNamesAndImpliedDirectories) {
  auto archive = CpioBuilder().file("./a/b/c.txt", "abc").file("/top", "t").dir("d/").finish();
  auto index = std::make_unique<cpio_index>();
  cpio_index_reset(index.get());
  ASSERT_EQ(cpio_index_add_archive(index.get(), archive.data(), archive.size()), 0);
  int32_t file = find(*index, "a/b/c.txt");
  ASSERT_GE(file, 0);
  EXPECT_EQ(std::string(reinterpret_cast<const char *>(index->nodes[file].data), index->nodes[file].size), "abc");
  EXPECT_EQ(index->nodes[file].mode, 0100644u);
  int32_t b = find(*index, "a/b");
  ASSERT_GE(b, 0);  // implied by a/b/c.txt
  EXPECT_EQ(index->nodes[b].mode & MODE_TYPE_MASK, static_cast<uint32_t>(MODE_DIR));
  EXPECT_EQ(index->nodes[file].parent, static_cast<uint32_t>(b));
  EXPECT_EQ(index->nodes[find(*index, "a")].parent, static_cast<uint32_t>(CPIO_ROOT));
  EXPECT_GE(find(*index, "top"), 0);
  EXPECT_GE(find(*index, "d"), 0);
  EXPECT_EQ(find(*index, "a/b/c"), -1);
  EXPECT_EQ(index->nodes[find(*index, "top")].mtime, 1700000000u);
}

TEST(CpioReader, RejectsDamagedArchivesAndKeepsWhatCameBefore) {
  auto good = CpioBuilder().file("one", "1").finish();
  size_t second = good.size() - 124;  // the first entry ends where the trailer began
  auto damaged = CpioBuilder().file("one", "1").file("two", "2").finish();
  damaged[second] = 'x';  // the second header's magic
  auto index = std::make_unique<cpio_index>();
  cpio_index_reset(index.get());
  EXPECT_EQ(cpio_index_add_archive(index.get(), damaged.data(), damaged.size()), -1);
  EXPECT_GE(find(*index, "one"), 0);
  EXPECT_EQ(find(*index, "two"), -1);
  // A size field that runs past the end is damage too.
  auto truncated = CpioBuilder().file("big", std::string(100, 'b')).finish();
  cpio_index_reset(index.get());
  EXPECT_EQ(cpio_index_add_archive(index.get(), truncated.data(), 150), -1);
  EXPECT_EQ(find(*index, "big"), -1);
}

TEST(CpioReader, StopsAtFullIndex) {
  CpioBuilder builder;
  for (int i = 0; i < CPIO_MAX_NODES + 5; i++) builder.file("f" + std::to_string(i), "");
  auto archive = builder.finish();
  auto index = std::make_unique<cpio_index>();
  cpio_index_reset(index.get());
  EXPECT_EQ(cpio_index_add_archive(index.get(), archive.data(), archive.size()), 0);
  EXPECT_EQ(index->count, static_cast<uint32_t>(CPIO_MAX_NODES));
  EXPECT_EQ(index->dropped, 6u);  // the root takes one slot
}

}  // namespace
}  // namespace thaw_guest_test
