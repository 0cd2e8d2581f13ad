#include "devices/bus.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace thaw::devices {
namespace {

// Records every access and answers reads with a fixed byte.
class RecordingDevice : public BusDevice {
 public:
  explicit RecordingDevice(uint8_t fill = 0xab) : fill_(fill) {}
  struct Access {
    bool is_write;
    uint64_t offset;
    std::vector<uint8_t> bytes;
  };
  void read(uint64_t offset, std::span<uint8_t> data) override {
    std::fill(data.begin(), data.end(), fill_);
    accesses.push_back({false, offset, {data.begin(), data.end()}});
  }
  void write(uint64_t offset, std::span<const uint8_t> data) override {
    accesses.push_back({true, offset, {data.begin(), data.end()}});
  }
  std::vector<Access> accesses;

 private:
  uint8_t fill_;
};

std::string insert_error(Bus& bus, uint64_t base, uint64_t length, const std::string& name) {
  try {
    bus.insert(std::make_shared<RecordingDevice>(), base, length, name);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

TEST(BusTest, DispatchesWithOffsetRelativeToBase) {
  Bus bus("pio");
  auto dev = std::make_shared<RecordingDevice>(0x5a);
  bus.insert(dev, 0x3f8, 8, "com1");

  uint8_t byte = 0;
  ASSERT_TRUE(bus.read(0x3fd, std::span(&byte, 1)));
  EXPECT_EQ(byte, 0x5a);
  const uint8_t out[2] = {1, 2};
  ASSERT_TRUE(bus.write(0x3f8, out));

  ASSERT_EQ(dev->accesses.size(), 2u);
  EXPECT_FALSE(dev->accesses[0].is_write);
  EXPECT_EQ(dev->accesses[0].offset, 5u);
  EXPECT_TRUE(dev->accesses[1].is_write);
  EXPECT_EQ(dev->accesses[1].offset, 0u);
  EXPECT_EQ(dev->accesses[1].bytes, (std::vector<uint8_t>{1, 2}));
}

TEST(BusTest, PicksTheRightDeviceAmongMany) {
  Bus bus("mmio");
  auto a = std::make_shared<RecordingDevice>(0xa);
  auto b = std::make_shared<RecordingDevice>(0xb);
  auto c = std::make_shared<RecordingDevice>(0xc);
  // Inserted out of order on purpose.
  bus.insert(c, 0x3000, 0x1000, "c");
  bus.insert(a, 0x1000, 0x1000, "a");
  bus.insert(b, 0x2000, 0x1000, "b");
  EXPECT_EQ(bus.device_count(), 3u);

  uint32_t value = 0;
  auto bytes = std::as_writable_bytes(std::span(&value, 1));
  std::span<uint8_t> data(reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
  ASSERT_TRUE(bus.read(0x2ffc, data));
  EXPECT_EQ(value, 0x0b0b0b0bu);
  ASSERT_TRUE(bus.read(0x3000, data));
  EXPECT_EQ(value, 0x0c0c0c0cu);
  EXPECT_EQ(bus.device_name_at(0x1fff), "a");
  EXPECT_EQ(bus.device_name_at(0x2000), "b");
  EXPECT_EQ(bus.device_name_at(0x4000), "");
  EXPECT_EQ(b->accesses.at(0).offset, 0xffcu);
}

TEST(BusTest, EdgeAddressesAndStraddlingAccesses) {
  Bus bus("pio");
  auto dev = std::make_shared<RecordingDevice>();
  bus.insert(dev, 0x60, 5, "i8042");
  uint8_t one = 0;
  uint8_t four[4] = {};
  EXPECT_FALSE(bus.read(0x5f, std::span(&one, 1)));  // one below
  EXPECT_TRUE(bus.read(0x60, std::span(&one, 1)));   // first byte
  EXPECT_TRUE(bus.read(0x64, std::span(&one, 1)));   // last byte
  EXPECT_FALSE(bus.read(0x65, std::span(&one, 1)));  // one past
  EXPECT_TRUE(bus.read(0x61, four));                 // ends exactly at the last byte
  EXPECT_FALSE(bus.read(0x62, four));                // runs one byte past the end
  EXPECT_FALSE(bus.write(0x63, std::span<const uint8_t>(four, 4)));
  EXPECT_EQ(dev->accesses.size(), 3u);
}

TEST(BusTest, DeviceAtTopOfAddressSpace) {
  Bus bus("mmio");
  auto dev = std::make_shared<RecordingDevice>();
  bus.insert(dev, UINT64_MAX - 7, 8, "top");
  uint8_t eight[8] = {};
  EXPECT_TRUE(bus.read(UINT64_MAX - 7, eight));
  uint8_t one = 0;
  EXPECT_TRUE(bus.read(UINT64_MAX, std::span(&one, 1)));
  EXPECT_FALSE(bus.read(UINT64_MAX - 3, eight));  // would wrap around
  EXPECT_NE(insert_error(bus, UINT64_MAX, 2, "wraps"), "");
}

TEST(BusTest, MissReadsAllOnesAndWritesNothing) {
  Bus bus("pio");
  auto dev = std::make_shared<RecordingDevice>();
  bus.insert(dev, 0x3f8, 8, "com1");
  uint8_t data[2] = {0, 0};
  EXPECT_FALSE(bus.read(0x2f8, data));
  EXPECT_EQ(data[0], 0xff);
  EXPECT_EQ(data[1], 0xff);
  EXPECT_FALSE(bus.write(0x2f8, std::span<const uint8_t>(data, 2)));
  EXPECT_TRUE(dev->accesses.empty());

  Bus empty("mmio");
  EXPECT_FALSE(empty.read(0, data));
}

TEST(BusTest, OverlapIsRejectedNamingBothDevices) {
  Bus bus("pio");
  bus.insert(std::make_shared<RecordingDevice>(), 0x3f8, 8, "com1");

  const std::string inside = insert_error(bus, 0x3fc, 1, "intruder");
  EXPECT_NE(inside.find("intruder"), std::string::npos) << inside;
  EXPECT_NE(inside.find("com1"), std::string::npos) << inside;
  EXPECT_NE(inside.find("pio"), std::string::npos) << inside;

  EXPECT_NE(insert_error(bus, 0x3f0, 9, "tail-overlap"), "");  // last byte 0x3f8
  EXPECT_NE(insert_error(bus, 0x3ff, 4, "head-overlap"), "");  // first byte 0x3ff
  EXPECT_NE(insert_error(bus, 0x300, 0x200, "covers"), "");

  // Adjacent ranges on either side are fine.
  EXPECT_EQ(insert_error(bus, 0x3f0, 8, "below"), "");
  EXPECT_EQ(insert_error(bus, 0x400, 8, "above"), "");
  EXPECT_EQ(bus.device_count(), 3u);
}

TEST(BusTest, ZeroLengthAndNullDeviceAreRejected) {
  Bus bus("mmio");
  const std::string zero = insert_error(bus, 0x1000, 0, "empty");
  EXPECT_NE(zero.find("empty"), std::string::npos) << zero;
  EXPECT_NE(zero.find("length 0"), std::string::npos) << zero;
  EXPECT_THROW(bus.insert(nullptr, 0x1000, 4, "null"), std::invalid_argument);
  EXPECT_EQ(bus.device_count(), 0u);
}

}  // namespace
}  // namespace thaw::devices
