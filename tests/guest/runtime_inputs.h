// What the function runtime is started with on the host (the unit tests in
// tests/guest and fuzz_guest_syscalls): a files archive, the info page, the
// control page. Header-only: fuzz targets use it without GoogleTest.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "program_runtime.h"

namespace thaw_guest_test {

// A cpio "newc" archive in memory, the format the guest indexes
// (guest/mini/cpio_reader.c), written here rather than by an external tool.
class CpioBuilder {
 public:
  CpioBuilder &file(const std::string &name, const std::string &data, uint32_t mode = 0100644) {
    entry(name, data, mode);
    return *this;
  }
  CpioBuilder &dir(const std::string &name) { return file(name, "", 040755); }
  CpioBuilder &symlink(const std::string &name, const std::string &target) { return file(name, target, 0120777); }
  // The trailer entry, then the bytes.
  std::vector<uint8_t> finish() {
    entry("TRAILER!!!", "", 0);
    return bytes_;
  }

 private:
  void entry(const std::string &name, const std::string &data, uint32_t mode) {
    char header[111];
    std::snprintf(header, sizeof header, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino_++, mode,
                  0u, 0u, 1u, 1700000000u, static_cast<unsigned>(data.size()), 0u, 0u, 0u, 0u,
                  static_cast<unsigned>(name.size() + 1), 0u);
    bytes_.insert(bytes_.end(), header, header + 110);
    bytes_.insert(bytes_.end(), name.begin(), name.end());
    bytes_.push_back(0);
    pad();
    bytes_.insert(bytes_.end(), data.begin(), data.end());
    pad();
  }
  void pad() {
    while (bytes_.size() % 4) bytes_.push_back(0);
  }

  std::vector<uint8_t> bytes_;
  uint32_t ino_ = 1;
};

// The info page of a program whose user memory is [PROGRAM_USER_BASE,
// stack_top): stack [stack_bottom, stack_top), break from brk_start, the
// mmap area below the stack. The files archive and the mailbox go above,
// where program_info_check wants them; on the host their addresses are only
// checked, never used.
inline thaw_program_info host_program_info(uint64_t stack_top, uint64_t stack_bottom, uint64_t brk_start,
                                           uint64_t files_size) {
  thaw_program_info info{};
  info.magic = PROGRAM_INFO_MAGIC;
  info.version = PROGRAM_INFO_VERSION;
  info.entry = PROGRAM_USER_BASE + 0x1000;
  info.stack_pointer = stack_top - 0x1000;
  info.brk_start = brk_start;
  info.mmap_top = stack_bottom;
  info.stack_bottom = stack_bottom;
  info.stack_top = stack_top;
  info.files_addr = stack_top;
  info.files_size = files_size;
  info.mailbox_addr = (stack_top + files_size + 0xfff) & ~0xfffull;
  info.mailbox_size = MAILBOX_SIZE;
  info.ram_top = info.mailbox_addr + MAILBOX_SIZE;
  std::strcpy(info.exe_path, "/bin/tool");
  return info;
}

// Where ring 3 sees the mailbox: made-up user addresses above user memory,
// standing in for the aliases program_user_alias.c maps in the guest.
constexpr uint64_t kStdoutAlias = 0x100000000ull + 0x123000;  // stdout and stderr, writable
constexpr uint64_t kInputAlias = 0x100000000ull + 0x400000;   // header and stdin, read-only

// Gives the runtime the two windows the guest sets up over its mailbox, so
// that copies between them and user memory queue for ring 3.
inline void add_ring3_windows(program_runtime *rt, uint8_t *mailbox) {
  rt->windows[0] = user_window{mailbox + MAILBOX_STDOUT_OFFSET, MAILBOX_STDOUT_CAPACITY + MAILBOX_STDERR_CAPACITY,
                               kStdoutAlias, 1};
  rt->windows[1] = user_window{mailbox, MAILBOX_STDOUT_OFFSET, kInputAlias, 0};
  rt->window_count = 2;
}

// The control page as the VMM leaves it for a clone (layout.h): 512 words.
inline void fill_control_page(uint64_t *control) {
  std::memset(control, 0, 512 * sizeof(uint64_t));
  control[CONTROL_OFF_MAGIC / 8] = CONTROL_MAGIC;
  control[CONTROL_OFF_SEED / 8] = 42;
  control[CONTROL_OFF_WALL_CLOCK_NS / 8] = 1700000000ull * 1000000000ull;
}

}  // namespace thaw_guest_test
