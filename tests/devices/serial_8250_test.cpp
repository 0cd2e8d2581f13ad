#include "devices/legacy/serial_8250.h"

#include "base/errors.h"

#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace thaw::devices {
namespace {

// Register offsets, spelled out here so the tests do not trust the device's.
constexpr uint64_t RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3,
                   MCR = 4, LSR = 5, MSR = 6, SCR = 7;

class RecordingLine : public InterruptLine {
 public:
  void set_level(bool high) override { levels.push_back(high); }
  bool high() const { return !levels.empty() && levels.back(); }
  std::vector<bool> levels;
};

class SerialTest : public ::testing::Test {
 protected:
  uint8_t in(uint64_t offset) {
    uint8_t v = 0xee;
    uart.read(offset, std::span(&v, 1));
    return v;
  }
  void out(uint64_t offset, uint8_t v) { uart.write(offset, std::span<const uint8_t>(&v, 1)); }
  void send(const std::string& s) {
    for (char c : s) out(THR, static_cast<uint8_t>(c));
  }

  std::string output;
  std::shared_ptr<RecordingLine> line = std::make_shared<RecordingLine>();
  Serial8250 uart{
      [this](std::span<const char> bytes) { output.append(bytes.begin(), bytes.end()); }, line};
};

TEST_F(SerialTest, ResetValuesMatchAnIdle16550A) {
  EXPECT_EQ(in(IER), 0x00);
  EXPECT_EQ(in(IIR), 0x01);  // no interrupt pending, FIFO off
  EXPECT_EQ(in(LCR), 0x00);
  EXPECT_EQ(in(MCR), 0x00);
  EXPECT_EQ(in(LSR), 0x60);  // THRE | TEMT, no data
  EXPECT_EQ(in(MSR), 0xb0);  // DCD | DSR | CTS, no deltas
  EXPECT_TRUE(line->levels.empty());
}

// The sequence of drivers/tty/serial/8250 autoconfig(): IER, loopback, FIFO.
TEST_F(SerialTest, LinuxStyleProbeDetects16550A) {
  out(SCR, 0xa5);
  EXPECT_EQ(in(SCR), 0xa5);
  out(SCR, 0x5a);
  EXPECT_EQ(in(SCR), 0x5a);

  out(IER, 0x00);
  EXPECT_EQ(in(IER) & 0x0f, 0x00);
  out(IER, 0x0f);
  EXPECT_EQ(in(IER) & 0x0f, 0x0f);
  out(IER, 0xff);
  EXPECT_EQ(in(IER), 0x0f);  // only four enable bits exist
  out(IER, 0x00);

  out(MCR, 0x10 | 0x0a);  // loopback | OUT2 | RTS
  EXPECT_EQ(in(MSR) & 0xf0, 0x90);  // DCD | CTS
  out(MCR, 0x00);

  out(FCR, 0x01);
  EXPECT_EQ(in(IIR) >> 6, 3);  // FIFO enabled: 16550A
  out(LCR, 0xbf);              // EFR probe: a 16550A has no EFR, IIR shows through
  EXPECT_NE(in(IIR), 0x00);
  out(LCR, 0x00);
  out(FCR, 0x00);
  EXPECT_EQ(in(IIR) >> 6, 0);
}

TEST_F(SerialTest, DlabSwitchesToDivisorLatch) {
  out(IER, 0x05);
  out(LCR, 0x83);  // DLAB | 8N1
  out(DLL, 0x01);  // 115200 baud
  out(DLM, 0x02);
  EXPECT_EQ(in(DLL), 0x01);
  EXPECT_EQ(in(DLM), 0x02);
  EXPECT_EQ(in(LCR), 0x83);
  out(LCR, 0x03);
  EXPECT_EQ(in(IER), 0x05);  // IER was not overwritten by the DLM write
  EXPECT_TRUE(output.empty());  // the DLL write was not transmitted
  send("A");
  EXPECT_EQ(output, "A");
  out(LCR, 0x83);
  EXPECT_EQ(in(DLL), 0x01);  // the THR write did not touch DLL
}

TEST_F(SerialTest, OutputSinkGetsEveryByte) {
  const std::string text = std::string("hello\r\nworld\0\xff", 14);
  send(text);
  EXPECT_EQ(output, text);
  EXPECT_EQ(in(LSR) & 0x60, 0x60);  // still empty: output is instantaneous
}

TEST_F(SerialTest, ThrEmptyInterruptRaisedOnEnableAndAfterWrites) {
  out(IER, 0x02);
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(IIR), 0x02);  // THRE pending; reading IIR acknowledges it
  EXPECT_FALSE(line->high());
  EXPECT_EQ(in(IIR), 0x01);

  send("x");
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(IIR), 0x02);
  EXPECT_FALSE(line->high());

  send("y");
  EXPECT_TRUE(line->high());
  out(IER, 0x00);  // disabling the source lowers the line
  EXPECT_FALSE(line->high());
  EXPECT_EQ(in(IIR), 0x01);
  EXPECT_EQ(line->levels, (std::vector<bool>{true, false, true, false, true, false}));
}

// serial8250_do_startup's UART_BUG_THRE test: re-enabling ETBEI must
// re-raise THRE even after the first one was acknowledged.
TEST_F(SerialTest, ThrEmptyReRaisedWhenReEnabled) {
  out(IER, 0x02);
  in(IIR);
  out(IER, 0x00);
  out(IER, 0x02);
  EXPECT_EQ(in(IIR) & 0x0f, 0x02);
}

TEST_F(SerialTest, NoThrInterruptWhileDisabled) {
  send("abc");
  EXPECT_TRUE(line->levels.empty());
  EXPECT_EQ(in(IIR), 0x01);
}

TEST_F(SerialTest, LoopbackRoutesTransmitToReceive) {
  out(MCR, 0x10);
  send("z");
  EXPECT_TRUE(output.empty());
  EXPECT_EQ(in(LSR) & 0x01, 0x01);
  EXPECT_EQ(in(RBR), 'z');
  EXPECT_EQ(in(LSR) & 0x01, 0x00);

  // MSR follows MCR in loopback, with delta bits until MSR is read.
  in(MSR);
  out(MCR, 0x10 | 0x01 | 0x04);  // DTR, OUT1
  EXPECT_EQ(in(MSR), 0x20 | 0x40 | 0x02);  // DSR | RI | delta DSR
  out(MCR, 0x10);                          // RI falls: trailing-edge bit
  EXPECT_EQ(in(MSR), 0x02 | 0x04);
  EXPECT_EQ(in(MSR), 0x00);

  out(MCR, 0x00);
  send("q");
  EXPECT_EQ(output, "q");
}

TEST_F(SerialTest, ModemStatusInterruptFromLoopbackChange) {
  out(IER, 0x08);
  out(MCR, 0x10);  // entering loopback drops DCD/DSR/CTS: deltas
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(IIR), 0x00);
  in(MSR);
  EXPECT_FALSE(line->high());
}

TEST_F(SerialTest, InputSetsDataReadyAndRaisesRxInterrupt) {
  out(FCR, 0x01);  // before the input: switching FIFO mode empties the FIFO
  EXPECT_EQ(uart.queue_input(std::span<const char>("ab", 2)), 2u);
  EXPECT_EQ(in(LSR) & 0x01, 0x01);
  EXPECT_TRUE(line->levels.empty());  // not enabled yet

  out(IER, 0x01);
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(IIR), 0xc4);
  EXPECT_EQ(in(RBR), 'a');
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(RBR), 'b');
  EXPECT_FALSE(line->high());
  EXPECT_EQ(in(LSR) & 0x01, 0x00);
  EXPECT_EQ(in(IIR), 0xc1);
}

TEST_F(SerialTest, RxDataOutranksThrEmpty) {
  out(IER, 0x03);
  EXPECT_EQ(in(IIR), 0x02);
  uart.queue_input(std::span<const char>("k", 1));
  send("o");
  EXPECT_EQ(in(IIR), 0x04);
  EXPECT_EQ(in(RBR), 'k');
  EXPECT_EQ(in(IIR), 0x02);
}

TEST_F(SerialTest, FifoOverflowIsAnOverrun) {
  const std::string big(70, 'x');
  EXPECT_EQ(uart.queue_input(big), 64u);
  out(IER, 0x04);
  EXPECT_TRUE(line->high());
  EXPECT_EQ(in(IIR), 0x06);
  EXPECT_EQ(in(LSR), 0x63);  // DR | OE | THRE | TEMT
  EXPECT_EQ(in(LSR), 0x61);  // OE cleared by reading LSR
  EXPECT_FALSE(line->high());

  out(FCR, 0x01);  // switching FIFO mode on empties the FIFO
  EXPECT_EQ(in(LSR) & 0x01, 0x00);
  uart.queue_input(std::span<const char>("z", 1));
  out(FCR, 0x01 | 0x02);  // so does an explicit RX clear
  EXPECT_EQ(in(LSR) & 0x01, 0x00);
}

TEST_F(SerialTest, WideAccessActsOnTheLowByte) {
  uint8_t two[2] = {0xee, 0xee};
  uart.read(LSR, two);
  EXPECT_EQ(two[0], 0x60);
  EXPECT_EQ(two[1], 0x00);
}

TEST_F(SerialTest, SaveRestoreRoundTrip) {
  out(LCR, 0x80);
  out(DLL, 0x03);
  out(LCR, 0x03);
  out(FCR, 0xc1);
  out(SCR, 0x42);
  out(IER, 0x01);
  uart.queue_input(std::span<const char>("hi", 2));
  ASSERT_TRUE(line->high());
  const Serial8250State saved = uart.save();
  EXPECT_EQ(saved.rx_fifo, (std::vector<uint8_t>{'h', 'i'}));

  // Change everything the state covers.
  in(RBR);
  in(RBR);
  out(SCR, 0x00);
  out(IER, 0x00);
  out(LCR, 0x80);
  out(DLL, 0x99);
  out(LCR, 0x00);
  out(FCR, 0x00);
  ASSERT_FALSE(line->high());
  ASSERT_NE(uart.save(), saved);

  uart.restore(saved);
  EXPECT_EQ(uart.save(), saved);
  EXPECT_TRUE(line->high());  // the restored RX interrupt drives the line
  EXPECT_EQ(in(SCR), 0x42);
  EXPECT_EQ(in(IIR), 0xc4);
  EXPECT_EQ(in(RBR), 'h');
  EXPECT_EQ(in(RBR), 'i');
  EXPECT_FALSE(line->high());
  out(LCR, 0x80);
  EXPECT_EQ(in(DLL), 0x03);
}

TEST_F(SerialTest, RestoreDrivesLineLowToo) {
  const Serial8250State quiet = uart.save();
  out(IER, 0x02);
  ASSERT_TRUE(line->high());
  uart.restore(quiet);
  EXPECT_FALSE(line->high());
}

// vCPU threads and a console thread use the UART at once; every byte must
// arrive exactly once.
TEST_F(SerialTest, ConcurrentWritersAndInputLoseNothing) {
  out(IER, 0x03);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 1000; ++i) {
        const uint8_t c = 'w';
        uart.write(THR, std::span<const uint8_t>(&c, 1));
        uint8_t iir = 0;
        uart.read(IIR, std::span(&iir, 1));
      }
    });
  }
  size_t queued = 0, received = 0;
  threads.emplace_back([&] {
    while (queued < 500) queued += uart.queue_input(std::span<const char>("r", 1));
  });
  while (received < 500) {
    uint8_t lsr = 0;
    uart.read(LSR, std::span(&lsr, 1));
    if (lsr & 0x01) {
      uint8_t c = 0;
      uart.read(RBR, std::span(&c, 1));
      EXPECT_EQ(c, 'r');
      ++received;
    }
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(output, std::string(4000, 'w'));
  EXPECT_EQ(queued, 500u);
}

std::string restore_error(Serial8250& uart, const Serial8250State& state) {
  try {
    uart.restore(state);
  } catch (const thaw::StateError& e) {
    return e.what();
  }
  return {};
}

TEST_F(SerialTest, RestoreRejectsBadStateNamingTheField) {
  out(SCR, 0x77);
  const Serial8250State good = uart.save();

  Serial8250State s = good;
  s.rx_fifo.assign(65, 'x');
  EXPECT_NE(restore_error(uart, s).find("rx_fifo"), std::string::npos);
  s = good;
  s.ier = 0x10;
  EXPECT_NE(restore_error(uart, s).find("ier"), std::string::npos);
  s = good;
  s.mcr = 0x20;
  EXPECT_NE(restore_error(uart, s).find("mcr"), std::string::npos);
  s = good;
  s.fcr = 0xc0;  // trigger level without FIFO enable
  EXPECT_NE(restore_error(uart, s).find("fcr"), std::string::npos);
  s = good;
  s.msr_deltas = 0x10;
  EXPECT_NE(restore_error(uart, s).find("msr_deltas"), std::string::npos);

  // A rejected restore leaves the device as it was.
  EXPECT_EQ(uart.save(), good);
  EXPECT_EQ(in(SCR), 0x77);

  s = good;
  s.rx_fifo.assign(64, 'y');  // exactly full is fine
  EXPECT_EQ(restore_error(uart, s), "");
}

}  // namespace
}  // namespace thaw::devices
