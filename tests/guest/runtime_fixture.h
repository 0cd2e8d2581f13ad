// A host-side harness for the mini guest's function runtime: user memory,
// mailbox and control page are host buffers, the machine layer is faked.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "program_runtime.h"
#include "runtime_inputs.h"

namespace thaw_guest_test {

// What the fake program_arch.h layer saw (runtime_fixture.cpp).
struct FakeArch {
  uint64_t tsc = 0;
  uint64_t fs_base = 0;
  int ready_points = 0;
  std::vector<std::string> log;
};
extern FakeArch fake_arch;

constexpr uint64_t kStackTop = PROGRAM_USER_BASE + 0x1000000;  // 16 MiB of user memory
constexpr uint64_t kBrkStart = PROGRAM_USER_BASE + 0x200000;
constexpr uint64_t kStackBottom = kStackTop - 0x100000;
constexpr uint64_t kScratch = PROGRAM_USER_BASE + 0x1000;  // below brk: the "ELF image"

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override;
  // (Re)initializes the runtime over `archive`.
  void boot(const std::vector<uint8_t> &archive);

  int64_t sys(uint64_t nr, uint64_t a0 = 0, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
              uint64_t a4 = 0, uint64_t a5 = 0) {
    int64_t result = program_syscall(rt.get(), nr, a0, a1, a2, a3, a4, a5);
    // The guest does these in ring 3 on the way back (program_copy.c).
    program_run_pending_copies(rt.get());
    return result;
  }
  uint8_t *at(uint64_t user_addr) { return memory.data() + (user_addr - PROGRAM_USER_BASE); }
  // Copies a NUL-terminated string to user memory; returns its address.
  uint64_t put_string(const std::string &text, uint64_t addr = kScratch);
  std::string get(uint64_t user_addr, size_t len) { return std::string(reinterpret_cast<char *>(at(user_addr)), len); }
  int64_t open(const std::string &path, uint64_t flags = 0, uint64_t mode = 0644);
  std::string read_all(int64_t fd);
  void set_stdin(const std::string &text);
  std::string stdout_text() const;

  std::vector<uint8_t> memory;            // [PROGRAM_USER_BASE, kStackTop)
  std::vector<uint8_t> mailbox_bytes;     // struct thaw_mailbox + buffers
  std::vector<uint64_t> control;          // the control page
  std::vector<uint8_t> archive_bytes;
  thaw_program_info info{};
  std::unique_ptr<program_runtime> rt;
  thaw_mailbox *mailbox() { return reinterpret_cast<thaw_mailbox *>(mailbox_bytes.data()); }
};

}  // namespace thaw_guest_test
