// A saved snapshot is untrusted input when read back: each kind of damage is
// rejected with a message that names it, before any VM is created.
#include <gtest/gtest.h>

#include <fstream>

#include "snapshot/state_codec.h"
#include "tests/integration/snapshot_test_support.h"

namespace thaw {
namespace {

std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// Restores from `dir` and returns the error message, or "" if it was accepted.
std::string restore_error(const std::string& dir) {
  try {
    snapshot::RestoreOptions options;
    auto clone = snapshot::restore_vm(dir, options);
    return "";
  } catch (const InputError& e) {
    return e.what();
  }
}

class UntrustedSnapshot : public ::testing::Test {
 protected:
  void SetUp() override {
    auto why = testing::kvm_unavailable_reason();
    if (!why.empty()) GTEST_SKIP() << "needs KVM: " << why;
    testing::snapshot_mini_guest("console=ttyS0 thaw.fn_bytes=4096", dir_.path());
    state_ = read_file(dir_ / "state");
    ASSERT_FALSE(state_.empty());
    ASSERT_EQ(restore_error(dir_.path()), "") << "the undamaged snapshot must restore";
  }
  // Re-encodes the state after `change` (a valid checksum over bad content).
  void rewrite_state(const std::function<void(snapshot::SnapshotState&)>& change) {
    auto state = snapshot::decode_state(state_);
    change(state);
    write_file(dir_ / "state", snapshot::encode_state(state));
  }
  testing::TempDir dir_;
  std::vector<uint8_t> state_;
};

TEST_F(UntrustedSnapshot, DamagedFilesAreRejectedWithTheReason) {
  auto state_path = dir_ / "state";
  auto truncated = std::vector<uint8_t>(state_.begin(), state_.begin() + static_cast<long>(state_.size() / 2));
  write_file(state_path, truncated);
  EXPECT_NE(restore_error(dir_.path()).find("truncated"), std::string::npos) << restore_error(dir_.path());

  auto flipped = state_;
  flipped[flipped.size() - 10] ^= 0x40;
  write_file(state_path, flipped);
  EXPECT_NE(restore_error(dir_.path()).find("checksum"), std::string::npos) << restore_error(dir_.path());

  auto wrong_version = state_;
  wrong_version[8] = 99;  // the u16 major version follows the 8-byte magic
  write_file(state_path, wrong_version);
  EXPECT_NE(restore_error(dir_.path()).find("format 99."), std::string::npos) << restore_error(dir_.path());

  std::vector<uint8_t> oversized(65 << 20, 0);
  std::copy(state_.begin(), state_.begin() + 32, oversized.begin());
  write_file(state_path, oversized);
  EXPECT_NE(restore_error(dir_.path()).find("over the limit"), std::string::npos) << restore_error(dir_.path());

  write_file(state_path, state_);
  auto memory_path = dir_ / "memory";
  std::filesystem::resize_file(memory_path, std::filesystem::file_size(memory_path) - 4096);
  EXPECT_NE(restore_error(dir_.path()).find("memory file"), std::string::npos) << restore_error(dir_.path());
}

TEST_F(UntrustedSnapshot, FieldsOutOfRangeAreRejectedWithTheReason) {
  rewrite_state([](auto& s) { s.host.kvm_backend = "kvm_pvm"; s.machine.vcpus.clear(); });
  EXPECT_NE(restore_error(dir_.path()).find("vCPU"), std::string::npos) << restore_error(dir_.path());

  rewrite_state([](auto& s) { s.memory.size_bytes += 1 << 20; });
  EXPECT_NE(restore_error(dir_.path()).find("memory"), std::string::npos) << restore_error(dir_.path());

  rewrite_state([](auto& s) { s.machine.vcpus[0].msrs.push_back({0x12345678u, 0, 1}); });
  EXPECT_NE(restore_error(dir_.path()).find("0x12345678"), std::string::npos) << restore_error(dir_.path());

  rewrite_state([](auto& s) { s.machine.devices.serial.rx_fifo.assign(500, 'x'); });
  EXPECT_NE(restore_error(dir_.path()).find("rx"), std::string::npos) << restore_error(dir_.path());

  rewrite_state([](auto& s) { s.machine.vcpus[0].events.exception.nr = 200; s.machine.vcpus[0].events.exception.injected = 1; });
  EXPECT_NE(restore_error(dir_.path()).find("exception"), std::string::npos) << restore_error(dir_.path());
}

}  // namespace
}  // namespace thaw
