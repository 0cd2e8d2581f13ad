#include "devices/legacy/boot_complete.h"

#include "base/errors.h"

#include <gtest/gtest.h>

#include <chrono>
#include <stdexcept>
#include <vector>

namespace thaw::devices {
namespace {

using std::chrono::nanoseconds;
using std::chrono::steady_clock;

void write_byte(BusDevice& dev, uint64_t offset, uint8_t v) {
  dev.write(offset, std::span<const uint8_t>(&v, 1));
}

class BootCompleteTest : public ::testing::Test {
 protected:
  std::vector<nanoseconds> calls;
  steady_clock::time_point start = steady_clock::now();
  BootComplete dev{start, [this](nanoseconds since) { calls.push_back(since); }};
};

TEST_F(BootCompleteTest, SignalCallsBackOnceWithElapsedTime) {
  const auto before = steady_clock::now();
  write_byte(dev, 0, 123);
  const auto after = steady_clock::now();
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_GE(calls[0].count(), 0);
  EXPECT_LE(calls[0], after - start);
  EXPECT_GE(calls[0], before - start);
  EXPECT_EQ(dev.completions(), 1u);
  EXPECT_EQ(dev.ignored_writes(), 0u);
  ASSERT_TRUE(dev.last_since_request().has_value());
  EXPECT_EQ(*dev.last_since_request(), calls[0]);
}

TEST_F(BootCompleteTest, OtherWritesAreCountedButIgnored) {
  write_byte(dev, 0, 122);
  write_byte(dev, 1, 123);  // right value, wrong offset
  const uint8_t wide[4] = {123, 0, 0, 0};
  dev.write(0, wide);  // right value, wrong width
  EXPECT_TRUE(calls.empty());
  EXPECT_EQ(dev.completions(), 0u);
  EXPECT_EQ(dev.ignored_writes(), 3u);
  EXPECT_FALSE(dev.last_since_request().has_value());
}

TEST(BootCompleteStandalone, AByteAtTheExitOffsetIsAnExitCode) {
  std::vector<uint8_t> codes;
  BootComplete dev{steady_clock::now(), [](nanoseconds) { ADD_FAILURE() << "not a boot-complete"; },
                   [&](uint8_t code) { codes.push_back(code); }};
  write_byte(dev, kBootCompleteExitOffset, 0x50);
  write_byte(dev, kBootCompleteExitOffset, 0);
  const uint8_t wide[2] = {0x50, 0};
  dev.write(kBootCompleteExitOffset, wide);  // one byte only
  write_byte(dev, kBootCompleteExitOffset + 1, 0x50);
  EXPECT_EQ(codes, (std::vector<uint8_t>{0x50, 0}));
  EXPECT_EQ(dev.ignored_writes(), 2u);
  EXPECT_EQ(dev.completions(), 0u);

  // Without an exit callback the offset is an ignored write like any other.
  BootComplete plain{steady_clock::now(), [](nanoseconds) {}};
  write_byte(plain, kBootCompleteExitOffset, 0x50);
  EXPECT_EQ(plain.ignored_writes(), 1u);
}

TEST_F(BootCompleteTest, ReadsReturnZero) {
  uint8_t data[4] = {1, 2, 3, 4};
  dev.read(0, data);
  for (uint8_t b : data) EXPECT_EQ(b, 0);
}

TEST(BootCompleteStandalone, FutureStartClampsToZero) {
  std::vector<nanoseconds> calls;
  BootComplete dev(steady_clock::now() + std::chrono::hours(1),
                   [&](nanoseconds since) { calls.push_back(since); });
  write_byte(dev, 0, 123);
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].count(), 0);
}

// The VMM snapshots from inside the callback, so it must be able to save().
TEST(BootCompleteStandalone, CallbackMaySaveTheDevice) {
  BootCompleteState seen;
  BootComplete* self = nullptr;
  BootComplete dev(steady_clock::now(), [&](nanoseconds) { seen = self->save(); });
  self = &dev;
  write_byte(dev, 0, 123);
  EXPECT_EQ(seen.completions, 1u);
}

TEST_F(BootCompleteTest, SaveRestoreRoundTrip) {
  write_byte(dev, 0, 1);
  write_byte(dev, 0, 123);
  const BootCompleteState saved = dev.save();
  EXPECT_EQ(saved.completions, 1u);
  EXPECT_EQ(saved.ignored_writes, 1u);
  EXPECT_GE(saved.last_since_request_ns, 0);

  write_byte(dev, 0, 123);
  write_byte(dev, 0, 7);
  ASSERT_NE(dev.save(), saved);
  dev.restore(saved);
  EXPECT_EQ(dev.save(), saved);
  EXPECT_EQ(dev.completions(), 1u);
  EXPECT_EQ(dev.ignored_writes(), 1u);
  EXPECT_EQ(dev.last_since_request()->count(), saved.last_since_request_ns);
}

TEST_F(BootCompleteTest, RestoreRejectsInconsistentState) {
  BootCompleteState bad;
  bad.completions = 0;
  bad.last_since_request_ns = 5;
  EXPECT_THROW(dev.restore(bad), thaw::StateError);
  bad.completions = 2;
  bad.last_since_request_ns = -7;
  try {
    dev.restore(bad);
    FAIL() << "restore accepted a negative boot time";
  } catch (const thaw::StateError& e) {
    EXPECT_NE(std::string(e.what()).find("last_since_request_ns"), std::string::npos);
  }
  EXPECT_EQ(dev.completions(), 0u);
}

}  // namespace
}  // namespace thaw::devices
