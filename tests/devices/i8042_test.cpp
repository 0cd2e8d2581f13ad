#include "devices/legacy/i8042.h"

#include "base/errors.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace thaw::devices {
namespace {

constexpr uint64_t DATA = kI8042DataOffset;
constexpr uint64_t CMD = kI8042CommandOffset;  // status on read

class I8042Test : public ::testing::Test {
 protected:
  uint8_t in(uint64_t offset) {
    uint8_t v = 0xee;
    dev.read(offset, std::span(&v, 1));
    return v;
  }
  void out(uint64_t offset, uint8_t v) { dev.write(offset, std::span<const uint8_t>(&v, 1)); }
  // What Linux's i8042_command does for a command with a one-byte reply.
  uint8_t command_with_reply(uint8_t command) {
    out(CMD, command);
    EXPECT_EQ(in(CMD) & 0x01, 0x01) << "no reply to command " << int(command);
    const uint8_t reply = in(DATA);
    EXPECT_EQ(in(CMD) & 0x01, 0x00) << "reply not consumed";
    return reply;
  }

  int resets = 0;
  I8042 dev{[this] { ++resets; }};
};

TEST_F(I8042Test, StatusIsIdleWithSystemFlag) {
  const uint8_t status = in(CMD);
  EXPECT_EQ(status & 0x01, 0x00);  // no output data: Linux's flush terminates
  EXPECT_EQ(status & 0x02, 0x00);  // input buffer empty: writes never wait
  EXPECT_EQ(status & 0x04, 0x04);  // system flag
}

TEST_F(I8042Test, ResetCommandCallsCallback) {
  out(CMD, 0xfe);
  EXPECT_EQ(resets, 1);
  out(CMD, 0xfe);
  EXPECT_EQ(resets, 2);
}

TEST_F(I8042Test, OnlyResetPulsesReset) {
  for (int c : {0x20, 0xa7, 0xa8, 0xaa, 0xad, 0xae, 0xff, 0xfd, 0xd4}) out(CMD, uint8_t(c));
  out(DATA, 0xfe);  // a data byte of 0xfe is not the reset command
  EXPECT_EQ(resets, 0);
  out(CMD, 0xf0);  // pulses every output line, reset included
  EXPECT_EQ(resets, 1);
}

TEST_F(I8042Test, SelfTestAndInterfaceTestsPass) {
  EXPECT_EQ(command_with_reply(0xaa), 0x55);
  EXPECT_EQ(command_with_reply(0xab), 0x00);
  EXPECT_EQ(command_with_reply(0xa9), 0x00);
}

TEST_F(I8042Test, CommandByteReadWriteAndPortEnables) {
  out(CMD, 0x60);
  out(DATA, 0x47);
  EXPECT_EQ(command_with_reply(0x20), 0x47);

  out(CMD, 0xad);  // disable keyboard
  out(CMD, 0xa7);  // disable aux
  EXPECT_EQ(command_with_reply(0x20), 0x47 | 0x10 | 0x20);
  out(CMD, 0xae);
  out(CMD, 0xa8);
  EXPECT_EQ(command_with_reply(0x20), 0x47);

  // A data byte with no command pending goes to the (absent) keyboard.
  out(DATA, 0x12);
  EXPECT_EQ(command_with_reply(0x20), 0x47);
}

TEST_F(I8042Test, StatusTracksLastWriteTarget) {
  out(CMD, 0xae);
  EXPECT_EQ(in(CMD) & 0x08, 0x08);
  out(DATA, 0x00);
  EXPECT_EQ(in(CMD) & 0x08, 0x00);
}

TEST_F(I8042Test, SaveRestoreRoundTrip) {
  out(CMD, 0x60);
  out(DATA, 0x31);
  out(CMD, 0xaa);  // leaves 0x55 waiting
  out(CMD, 0x60);  // and a command waiting for its data byte
  const I8042State saved = dev.save();
  EXPECT_EQ(saved.control, 0x31 | 0x04);
  EXPECT_TRUE(saved.output_full);

  in(DATA);
  out(DATA, 0x00);
  ASSERT_NE(dev.save(), saved);

  dev.restore(saved);
  EXPECT_EQ(dev.save(), saved);
  EXPECT_EQ(in(CMD) & 0x01, 0x01);
  EXPECT_EQ(in(DATA), 0x55);
  out(DATA, 0x44);  // completes the restored 0x60 command
  EXPECT_EQ(command_with_reply(0x20), 0x44);
}

TEST_F(I8042Test, RestoreRejectsUnknownPendingCommand) {
  I8042State bad = dev.save();
  bad.pending_command = 0xfe;
  try {
    dev.restore(bad);
    FAIL() << "restore accepted pending_command 0xfe";
  } catch (const thaw::StateError& e) {
    EXPECT_NE(std::string(e.what()).find("pending_command"), std::string::npos);
  }
  EXPECT_EQ(dev.save().pending_command, 0);
}

}  // namespace
}  // namespace thaw::devices
