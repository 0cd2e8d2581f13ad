// Snapshot format evolution: files of an older minor version stay readable
// (a committed format 1.0 file, written by the thaw before the minor
// existed), a newer minor of the same major is read too (its added fields
// are ignored), and another major is refused.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "snapshot/state_codec.h"
#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::edit_message;
using test::expect_input_error;
using test::make_full_state;

std::vector<uint8_t> read_fixture(const std::string& name) {
  std::ifstream in(std::string(THAW_SOURCE_DIR) + "/tests/snapshot/data/" + name, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void set_header_version(std::vector<uint8_t>& file, uint16_t major, uint16_t minor) {
  std::memcpy(file.data() + 8, &major, 2);
  std::memcpy(file.data() + 10, &minor, 2);
}

TEST(StateFormatVersion, AFormat1_0FileFromAnEarlierThawStillDecodes) {
  auto file = read_fixture("state-format-1.0.bin");
  ASSERT_GT(file.size(), kStateHeaderBytes) << "tests/snapshot/data/state-format-1.0.bin is missing";
  // Format 1.0 wrote one u32 version there: 1, which reads as 1.0.
  uint32_t old_version = 0;
  std::memcpy(&old_version, file.data() + 8, 4);
  ASSERT_EQ(old_version, 1u);

  // The fixture is make_full_state() as the earlier thaw encoded it: every
  // field must come back, so re-encoding it matches a fresh encoding.
  SnapshotState decoded;
  ASSERT_NO_THROW(decoded = decode_state(file));
  EXPECT_EQ(encode_state(decoded), encode_state(make_full_state()));
}

// The fields a newer minor adds are skipped by Cap'n Proto itself; what
// thaw must not do is refuse the version number.
TEST(StateFormatVersion, ANewerMinorOfThisMajorIsRead) {
  auto file = edit_message(encode_state(make_full_state()), [](auto root) { root.setFormatMinor(kFormatMinor + 5); });
  set_header_version(file, kFormatMajor, kFormatMinor + 5);
  SnapshotState decoded;
  ASSERT_NO_THROW(decoded = decode_state(file));
  EXPECT_EQ(encode_state(decoded), encode_state(make_full_state()));
}

TEST(StateFormatVersion, AnotherMajorIsRefusedWithBothVersionsNamed) {
  auto file = edit_message(encode_state(make_full_state()), [](auto root) { root.setFormatMajor(kFormatMajor + 1); });
  set_header_version(file, kFormatMajor + 1, 0);
  expect_input_error([&] { decode_state(file); }, "file has format 2.0, this thaw reads 1.x");
}

}  // namespace
}  // namespace thaw::snapshot
