#include "runtime_fixture.h"

#include "program_arch.h"

namespace thaw_guest_test {

FakeArch fake_arch;

void RuntimeTest::SetUp() {
  fake_arch = FakeArch{};
  fake_arch.tsc = 1000000;
  memory.assign(kStackTop - PROGRAM_USER_BASE, 0);
  mailbox_bytes.assign(MAILBOX_SIZE, 0);
  control.assign(512, 0);
  fill_control_page(control.data());
  boot(CpioBuilder()
           .dir("./etc")
           .file("./etc/hello.txt", "hello, world\n")
           .file("./bin/tool", "#!tool")
           .symlink("./etc/link", "hello.txt")
           .finish());
}

void RuntimeTest::boot(const std::vector<uint8_t> &archive) {
  archive_bytes = archive;
  info = host_program_info(kStackTop, kStackBottom, kBrkStart, archive_bytes.size());
  rt = std::make_unique<program_runtime>();
  program_runtime_init(rt.get(), &info, reinterpret_cast<intptr_t>(memory.data()) - static_cast<intptr_t>(PROGRAM_USER_BASE),
                       archive_bytes.data(), mailbox(), control.data(), 1000000 /* 1 GHz */);
}

uint64_t RuntimeTest::put_string(const std::string &text, uint64_t addr) {
  std::memcpy(at(addr), text.c_str(), text.size() + 1);
  return addr;
}

int64_t RuntimeTest::open(const std::string &path, uint64_t flags, uint64_t mode) {
  return sys(257, static_cast<uint64_t>(-100), put_string(path, kScratch + 0x3000), flags, mode);
}

std::string RuntimeTest::read_all(int64_t fd) {
  std::string out;
  for (;;) {
    int64_t n = sys(0, static_cast<uint64_t>(fd), kScratch + 0x8000, 7);
    if (n <= 0) break;
    out += get(kScratch + 0x8000, static_cast<size_t>(n));
  }
  return out;
}

void RuntimeTest::set_stdin(const std::string &text) {
  mailbox()->magic = MAILBOX_MAGIC;
  mailbox()->stdin_len = text.size();
  std::memcpy(mailbox_bytes.data() + MAILBOX_STDIN_OFFSET, text.data(), text.size());
}

std::string RuntimeTest::stdout_text() const {
  auto mb = reinterpret_cast<const thaw_mailbox *>(mailbox_bytes.data());
  return std::string(reinterpret_cast<const char *>(mailbox_bytes.data()) + MAILBOX_STDOUT_OFFSET, mb->stdout_len);
}

}  // namespace thaw_guest_test

// The fake machine layer.
extern "C" {
uint64_t program_arch_tsc(void) { return thaw_guest_test::fake_arch.tsc; }
void program_arch_set_fs_base(uint64_t base) { thaw_guest_test::fake_arch.fs_base = base; }
void program_arch_ready_point(void) { thaw_guest_test::fake_arch.ready_points++; }
void program_arch_log(const char *what, uint64_t number) {
  thaw_guest_test::fake_arch.log.push_back(std::string(what) + " " + std::to_string(number));
}
}
