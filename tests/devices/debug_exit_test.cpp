#include "devices/legacy/debug_exit.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace thaw::devices {
namespace {

void write_byte(BusDevice& dev, uint64_t offset, uint8_t v) {
  dev.write(offset, std::span<const uint8_t>(&v, 1));
}

TEST(DebugExitTest, CodeIsPassedThrough) {
  std::vector<int> codes;
  DebugExit dev([&](uint8_t code) { codes.push_back(code); });
  EXPECT_FALSE(dev.exit_code().has_value());
  write_byte(dev, 0, 0);
  write_byte(dev, 0, 3);
  const uint8_t wide[4] = {0xfe, 0x01, 0, 0};  // outl 0x1fe: low byte counts
  dev.write(0, wide);
  EXPECT_EQ(codes, (std::vector<int>{0, 3, 0xfe}));
  EXPECT_EQ(dev.exit_code(), std::optional<uint8_t>(0xfe));
}

TEST(DebugExitTest, SaveRestoreRoundTrip) {
  int calls = 0;
  DebugExit dev([&](uint8_t) { ++calls; });
  const DebugExitState fresh = dev.save();
  write_byte(dev, 0, 9);
  const DebugExitState saved = dev.save();
  EXPECT_TRUE(saved.exited);
  EXPECT_EQ(saved.code, 9);

  dev.restore(fresh);
  EXPECT_FALSE(dev.exit_code().has_value());
  dev.restore(saved);
  EXPECT_EQ(dev.exit_code(), std::optional<uint8_t>(9));
  EXPECT_EQ(calls, 1);  // restoring does not replay the exit
}

}  // namespace
}  // namespace thaw::devices
