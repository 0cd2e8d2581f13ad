// decode_state treats the file as untrusted: each test breaks one thing and
// checks that the error names it.
#include <gtest/gtest.h>

#include <cstring>

#include "snapshot/state_codec.h"
#include "snapshot_test_support.h"

namespace thaw::snapshot {
namespace {

using test::edit_message;
using test::expect_input_error;
using test::make_full_state;

std::vector<uint8_t> encoded(const SnapshotState& s = make_full_state()) { return encode_state(s); }

TEST(StateCodecReject, TruncatedFileAtSeveralCutPoints) {
  auto file = encoded();
  for (size_t cut : {size_t{0}, size_t{7}, size_t{31}}) {
    SCOPED_TRACE(cut);
    std::vector<uint8_t> part(file.begin(), file.begin() + cut);
    expect_input_error([&] { decode_state(part); }, "header (truncated?)");
  }
  for (size_t cut : {size_t{32}, size_t{33}, file.size() / 2, file.size() - 1}) {
    SCOPED_TRACE(cut);
    std::vector<uint8_t> part(file.begin(), file.begin() + cut);
    expect_input_error([&] { decode_state(part); }, "(truncated)");
  }
}

TEST(StateCodecReject, TrailingBytesAfterThePayload) {
  auto file = encoded();
  file.push_back(0);
  expect_input_error([&] { decode_state(file); }, "header says the payload is");
}

TEST(StateCodecReject, BitFlipInPayloadFailsTheChecksum) {
  auto file = encoded();
  for (size_t at : {size_t{kStateHeaderBytes}, file.size() / 2, file.size() - 1}) {
    SCOPED_TRACE(at);
    auto bad = file;
    bad[at] ^= 0x10;
    expect_input_error([&] { decode_state(bad); }, "checksum mismatch");
  }
}

TEST(StateCodecReject, BitFlipInHeaderIsCaughtWhereverItLands) {
  auto file = encoded();
  struct Case {
    size_t byte;
    const char* needle;
  };
  const std::string minor = std::to_string(kFormatMinor);
  const std::string flipped_major = "file has format 5." + minor;                         // 1 ^ 4
  const std::string flipped_minor = "the file header 1." + std::to_string(kFormatMinor ^ 4);
  for (auto c : {Case{0, "bad magic"}, Case{8, flipped_major.c_str()},
                 Case{10, flipped_minor.c_str()}, Case{12, "header size"},
                 Case{16, "header says the payload is"}, Case{24, "checksum mismatch"}}) {
    SCOPED_TRACE(c.byte);
    auto bad = file;
    bad[c.byte] ^= 0x04;
    expect_input_error([&] { decode_state(bad); }, c.needle);
  }
}

TEST(StateCodecReject, WrongMagic) {
  auto file = encoded();
  std::memcpy(file.data(), "QEMUSNAP", 8);
  expect_input_error([&] { decode_state(file); }, "not a thaw snapshot state file");
}

TEST(StateCodecReject, OtherMajorVersionNamesBoth) {
  auto file = encoded();
  uint16_t major = 7;
  std::memcpy(file.data() + 8, &major, 2);
  expect_input_error([&] { decode_state(file); }, "file has format 7." + std::to_string(kFormatMinor) + ", this thaw reads 1.x");
}

TEST(StateCodecReject, MessageVersionMustMatchTheHeader) {
  auto file = edit_message(encoded(), [](auto root) { root.setFormatMajor(2); });
  expect_input_error([&] { decode_state(file); }, "message says format 2." + std::to_string(kFormatMinor) + ", the file header 1." + std::to_string(kFormatMinor));
  file = edit_message(encoded(), [](auto root) { root.setFormatMinor(0); });
  expect_input_error([&] { decode_state(file); }, "message says format 1.0, the file header 1." + std::to_string(kFormatMinor));
}

TEST(StateCodecReject, NoPitWithPitBytesIsContradictory) {
  auto file = edit_message(encoded(), [](auto root) { root.getVm().setNoPit(true); });
  expect_input_error([&] { decode_state(file); }, "noPit but holds a pit");
}

TEST(StateCodecReject, WrongArch) {
  auto file = edit_message(encoded(), [](auto root) { root.setArch("aarch64"); });
  expect_input_error([&] { decode_state(file); }, "arch is \"aarch64\"");
  // An escape sequence in the file never reaches the terminal as one.
  auto hostile = edit_message(encoded(), [](auto root) { root.setArch("\x1b]0;owned\x07\x1b[2J"); });
  expect_input_error([&] { decode_state(hostile); }, "arch is \"\\x1b]0;owned\\x07\\x1b[2J\"");
}

TEST(StateCodecReject, OversizedFileRejectedBeforeParsing) {
  // All 0xff: if the parser ran first it would fail on the magic, not the size.
  std::vector<uint8_t> huge((64ull << 20) + 1, 0xff);
  expect_input_error([&] { decode_state(huge); }, "over the limit of 67108864");
  DecodeLimits tight;
  tight.max_file_bytes = 100;
  auto file = encoded();
  expect_input_error([&] { decode_state(file, tight); }, "over the limit of 100");
}

TEST(StateCodecReject, TraversalLimitStopsAnOversizedMessage) {
  DecodeLimits tight;
  tight.traversal_limit_words = 64;  // far below one vCPU's state
  expect_input_error([&] { decode_state(encoded(), tight); }, "payload is not a valid message");
}

TEST(StateCodecReject, GarbagePayloadWithValidChecksum) {
  auto file = encoded();
  std::vector<uint8_t> garbage(file.begin(), file.begin() + kStateHeaderBytes);
  std::vector<uint8_t> payload = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00};
  uint64_t length = payload.size(), hash = XXH3_64bits(payload.data(), payload.size());
  std::memcpy(garbage.data() + 16, &length, 8);
  std::memcpy(garbage.data() + 24, &hash, 8);
  garbage.insert(garbage.end(), payload.begin(), payload.end());
  expect_input_error([&] { decode_state(garbage); }, "payload is not a valid message");
}

TEST(StateCodecReject, VcpuCountZero) {
  auto s = make_full_state();
  s.machine.vcpus.clear();
  expect_input_error([&] { decode_state(encoded(s)); }, "has 0 vCPUs; expected 1..254");
}

TEST(StateCodecReject, VcpuCount255) {
  auto s = make_full_state(64ull << 20, 255);
  expect_input_error([&] { decode_state(encoded(s)); }, "has 255 vCPUs; expected 1..254");
}

TEST(StateCodecReject, VcpuCountFieldDisagreesWithList) {
  auto file = edit_message(encoded(), [](auto root) { root.setVcpuCount(3); });
  expect_input_error([&] { decode_state(file); }, "lists 2 vCPUs but vcpuCount says 3");
}

TEST(StateCodecReject, VcpuIdsMustBeContiguous) {
  auto s = make_full_state(64ull << 20, 3);
  s.machine.vcpus[2].vcpu_id = 1;  // a repeat
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 2 has id 1");
  s.machine.vcpus[2].vcpu_id = 5;  // a gap
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 2 has id 5");
}

TEST(StateCodecReject, MemorySizeNotMatchingRegions) {
  auto s = make_full_state();
  s.memory.regions[0].size -= 4096;
  expect_input_error([&] { decode_state(encoded(s)); }, "cover 67104768 bytes, the memory size is 67108864");
}

TEST(StateCodecReject, RegionsElsewhereThanThawPlacesThem) {
  auto s = make_full_state(5ull << 30);
  std::swap(s.memory.regions[0].guest_start, s.memory.regions[1].guest_start);
  expect_input_error([&] { decode_state(encoded(s)); }, "memory region 0 is guest 0x0000000100000000");
}

TEST(StateCodecReject, MemorySizeZeroOrUnaligned) {
  auto s = make_full_state();
  s.memory.size_bytes = 0;
  expect_input_error([&] { decode_state(encoded(s)); }, "memory size is 0");
  s.memory.size_bytes = (64ull << 20) + 100;
  expect_input_error([&] { decode_state(encoded(s)); }, "not a multiple of 4 KiB");
}

TEST(StateCodecReject, ChunkSizeMustBeAPowerOfTwoFrom4K) {
  auto s = make_full_state();
  s.memory.chunk_bytes = 3 << 20;
  expect_input_error([&] { decode_state(encoded(s)); }, "chunk size 3145728 is not a power of two");
  s.memory.chunk_bytes = 2048;
  expect_input_error([&] { decode_state(encoded(s)); }, "chunk size 2048");
}

TEST(StateCodecReject, ChunkHashCountWrong) {
  auto s = make_full_state();
  s.memory.chunk_hashes.pop_back();
  expect_input_error([&] { decode_state(encoded(s)); }, "memory has 31 chunk hashes");
  s.memory.chunk_hashes.resize(33);
  expect_input_error([&] { decode_state(encoded(s)); }, "need 32");
}

TEST(StateCodecReject, KernelStructOfTheWrongSize) {
  auto file = edit_message(encoded(), [](auto root) {
    root.getVcpus()[1].setRegs(capnp::Data::Reader(reinterpret_cast<const kj::byte*>("0123456789"), 10));
  });
  expect_input_error([&] { decode_state(file); },
                     "vCPU 1 regs is 10 bytes, struct kvm_regs is " + std::to_string(sizeof(kvm_regs)));
  auto no_pit = edit_message(encoded(), [](auto root) { root.getVm().disownPit(); });
  expect_input_error([&] { decode_state(no_pit); }, "VM pit is 0 bytes");
}

TEST(StateCodecReject, IrqchipWithTheWrongChipId) {
  auto s = make_full_state();
  s.machine.vm.pic_slave.chip_id = KVM_IRQCHIP_IOAPIC;
  expect_input_error([&] { decode_state(encoded(s)); }, "VM picSlave has chip_id 2, expected 1");
}

TEST(StateCodecReject, MsrListTooLong) {
  auto s = make_full_state();
  s.machine.vcpus[0].msrs.resize(4097);
  for (uint32_t i = 0; i < s.machine.vcpus[0].msrs.size(); ++i) s.machine.vcpus[0].msrs[i].index = i;
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 0 has 4097 MSRs, over the limit of 4096");
}

TEST(StateCodecReject, RepeatedMsr) {
  auto s = make_full_state();
  s.machine.vcpus[1].msrs[3].index = s.machine.vcpus[1].msrs[2].index;
  expect_input_error([&] { decode_state(encoded(s)); }, "lists MSR 3221225602 twice");
}

TEST(StateCodecReject, CpuidListTooLongOrEmpty) {
  auto s = make_full_state();
  s.machine.vcpus[0].cpuid.resize(257);
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 0 has 257 CPUID entries");
  s.machine.vcpus[0].cpuid.clear();
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 0 has 0 CPUID entries");
}

TEST(StateCodecReject, XsaveSizeOutOfRange) {
  auto s = make_full_state();
  s.machine.vcpus[0].xsave.resize((1u << 20) + 4);
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 0 xsave is 1048580 bytes");
  s.machine.vcpus[0].xsave.resize(100);
  expect_input_error([&] { decode_state(encoded(s)); }, "vCPU 0 xsave is 100 bytes");
}

TEST(StateCodecReject, UnknownMpState) {
  auto s = make_full_state();
  s.machine.vcpus[0].mp_state.mp_state = KVM_MP_STATE_LOAD;  // s390 only
  expect_input_error([&] { decode_state(encoded(s)); }, "mp_state 8 is not an x86");
}

TEST(StateCodecReject, SerialRxFifoTooLong) {
  auto s = make_full_state();
  s.machine.devices.serial.rx_fifo.assign(65, 'x');
  expect_input_error([&] { decode_state(encoded(s)); }, "serial rx FIFO holds 65 bytes");
}

TEST(StateCodecReject, MissingDeviceSection) {
  auto file = edit_message(encoded(), [](auto root) { root.getDevices().disownI8042(); });
  expect_input_error([&] { decode_state(file); }, "device state is missing");
}

TEST(StateCodecReject, MessageMagicMustMatch) {
  auto file = edit_message(encoded(), [](auto root) { root.setMagic(1); });
  expect_input_error([&] { decode_state(file); }, "message magic is 0x0000000000000001");
}

}  // namespace
}  // namespace thaw::snapshot
