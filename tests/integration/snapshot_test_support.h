// Helpers for tests that snapshot the mini guest and restore clones.
#pragma once

#include <string>

#include "snapshot/vm_snapshot.h"
#include "tests/integration/kvm_test_support.h"
#include "tests/temp_dir.h"  // TempDir, for the tests that include this
#include "vmm/control_page.h"

namespace thaw::testing {

// The mini guest's control page (guest/mini/control_page_abi.h): what the
// VMM hands each clone before it runs.
using vmm::ControlPage;
inline constexpr uint64_t kControlPage = vmm::kControlPageAddress;
inline constexpr uint64_t kControlMagic = vmm::kControlPageMagic;
inline constexpr uint64_t kCloneBuffer = 0x200000;
inline constexpr uint64_t kCloneBufferBytes = 64 * 1024;

inline std::vector<uint8_t> expected_clone_buffer(uint64_t input) {
  std::vector<uint8_t> bytes(kCloneBufferBytes);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7) ^ static_cast<uint8_t>(input);
  return bytes;
}

inline uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint8_t b : bytes) {
    h ^= b;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Cold-boots the mini guest with `cmdline` (and an in-kernel PIT unless
// `pit` is false), pauses it at boot complete and saves it to `dir`.
// Returns the cold boot's console.
inline std::string snapshot_mini_guest(const std::string& cmdline, const std::string& dir, bool pit = true) {
  CapturedConsole console;
  auto config = mini_config(cmdline, console);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  config.pit = pit;
  auto vm = vmm::Vm::create(config);
  try {
    snapshot::boot_and_snapshot(*vm, dir, std::chrono::seconds(60));
  } catch (const snapshot::BootIncomplete& e) {
    ADD_FAILURE() << "mini guest: " << e.what() << "\n" << console.text();
  }
  return console.text();
}

}  // namespace thaw::testing
