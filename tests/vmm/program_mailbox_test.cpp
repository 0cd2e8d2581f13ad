// The host's side of the program mailbox: requests in, responses out, and
// every impossible value a hostile guest can write clamped or refused.
#include "vmm/program_mailbox.h"

#include <gtest/gtest.h>

#include "guest/mini/program_abi.h"
#include "vmm/loader/program_image.h"
#include "tests/vmm/program_elf_builder.h"
#include "tests/vmm/synthetic_images.h"

namespace thaw::vmm {
namespace {

using testing::input_error_of;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kRam = 64 * kMiB;
constexpr uint64_t kMailbox = kRam - MAILBOX_SIZE;

class ProgramMailboxTest : public ::testing::Test {
 protected:
  GuestMemory mem_ = GuestMemory::create(kRam);

  thaw_mailbox header() { return mem_.read_obj<thaw_mailbox>(GuestAddress(kMailbox)); }
  void set_header(const thaw_mailbox& m) { mem_.write_obj(GuestAddress(kMailbox), m); }
  // What a well-behaved guest writes for "exited 3 after printing".
  void guest_exits(uint64_t status, const std::string& out, const std::string& err) {
    thaw_mailbox m = header();
    m.outcome = OUTCOME_EXITED;
    m.status = status;
    m.stdout_len = out.size();
    m.stderr_len = err.size();
    m.syscalls = 12;
    m.unknown_syscall_count = 2;
    m.unknown_syscalls[0] = 435;
    m.unknown_syscalls[1] = 302;
    set_header(m);
    mem_.write(GuestAddress(kMailbox + MAILBOX_STDOUT_OFFSET), std::span(reinterpret_cast<const uint8_t*>(out.data()), out.size()));
    mem_.write(GuestAddress(kMailbox + MAILBOX_STDERR_OFFSET), std::span(reinterpret_cast<const uint8_t*>(err.data()), err.size()));
  }
};

TEST_F(ProgramMailboxTest, RequestAndResponseRoundTrip) {
  const std::string input = "hello guest";
  // A stale answer from an earlier request must not survive a new request.
  guest_exits(9, "old", "");
  write_request(mem_, kMailbox, std::span(reinterpret_cast<const uint8_t*>(input.data()), input.size()));
  const auto m = header();
  EXPECT_EQ(m.magic, MAILBOX_MAGIC);
  EXPECT_EQ(m.stdin_len, input.size());
  EXPECT_EQ(m.outcome, static_cast<uint64_t>(OUTCOME_NONE));
  EXPECT_EQ(m.stdout_len, 0u);
  EXPECT_EQ(std::memcmp(mem_.slice(GuestAddress(kMailbox + MAILBOX_STDIN_OFFSET), input.size()).data(), input.data(),
                        input.size()),
            0);
  EXPECT_EQ(describe(read_response(mem_, kMailbox)), "did not finish: the guest wrote no outcome");

  guest_exits(3, "out bytes", "err");
  const auto r = read_response(mem_, kMailbox);
  EXPECT_EQ(r.outcome, ProgramOutcome::kExited) << r.problem;
  EXPECT_EQ(r.status, 3u);
  EXPECT_EQ(std::string(r.stdout_bytes.begin(), r.stdout_bytes.end()), "out bytes");
  EXPECT_EQ(std::string(r.stderr_bytes.begin(), r.stderr_bytes.end()), "err");
  EXPECT_EQ(r.syscalls, 12u);
  EXPECT_EQ(r.unknown_syscalls, (std::vector<uint16_t>{435, 302}));
  EXPECT_EQ(describe(r), "exited with status 3");
}

TEST_F(ProgramMailboxTest, RefusesStdinOverCapacityAndABadMailbox) {
  std::vector<uint8_t> big(MAILBOX_STDIN_CAPACITY + 1);
  EXPECT_CONTAINS(input_error_of([&] { write_request(mem_, kMailbox, big); }), "at most 1048576");
  big.pop_back();
  EXPECT_NO_THROW(write_request(mem_, kMailbox, big));
  EXPECT_CONTAINS(input_error_of([&] { write_request(mem_, kMailbox + 4096, {}); }), "not inside guest RAM");
  EXPECT_CONTAINS(input_error_of([&] { read_response(mem_, kMailbox + 8); }), "not page-aligned");
}

TEST_F(ProgramMailboxTest, ClampsLengthsOverCapacity) {
  guest_exits(0, "", "");
  auto m = header();
  m.stdout_len = ~0ull;
  m.stderr_len = MAILBOX_STDERR_CAPACITY + 1;
  set_header(m);
  const auto r = read_response(mem_, kMailbox);
  EXPECT_EQ(r.outcome, ProgramOutcome::kBadResponse);
  EXPECT_EQ(r.stdout_bytes.size(), MAILBOX_STDOUT_CAPACITY);
  EXPECT_EQ(r.stderr_bytes.size(), MAILBOX_STDERR_CAPACITY);
  EXPECT_CONTAINS(r.problem, "stdout_len 18446744073709551615 is over its capacity");
  EXPECT_CONTAINS(r.problem, "stderr_len");
  EXPECT_CONTAINS(describe(r), "bad response from the guest");
}

TEST_F(ProgramMailboxTest, ClampsTheUnknownSyscallCount) {
  guest_exits(0, "", "");
  auto m = header();
  m.unknown_syscall_count = 1000;
  set_header(m);
  const auto r = read_response(mem_, kMailbox);
  EXPECT_EQ(r.outcome, ProgramOutcome::kBadResponse);
  EXPECT_EQ(r.unknown_syscalls.size(), static_cast<size_t>(MAILBOX_UNKNOWN_SYSCALLS_MAX));
  EXPECT_CONTAINS(r.problem, "unknown_syscall_count 1000");
}

TEST_F(ProgramMailboxTest, RefusesImpossibleOutcomesAndStatuses) {
  auto m = header();
  m.outcome = 77;
  set_header(m);
  EXPECT_CONTAINS(describe(read_response(mem_, kMailbox)), "unknown outcome 77");
  m.outcome = OUTCOME_EXITED;
  m.status = 256;
  set_header(m);
  EXPECT_CONTAINS(read_response(mem_, kMailbox).problem, "exit status 256 is over 255");
  m.outcome = OUTCOME_FAULT;
  m.status = 9;  // SIGKILL: no CPU exception raises it
  set_header(m);
  EXPECT_CONTAINS(read_response(mem_, kMailbox).problem, "fault signal 9");
  m.status = PROGRAM_SIGSEGV;
  m.fault_vector = 200;
  set_header(m);
  EXPECT_CONTAINS(read_response(mem_, kMailbox).problem, "fault vector 200");
}

TEST_F(ProgramMailboxTest, DescribesEveryOutcome) {
  // What the host reads back after the guest wrote `m`.
  auto described = [&](const thaw_mailbox& m) {
    set_header(m);
    return describe(read_response(mem_, kMailbox));
  };
  auto m = header();
  m.outcome = OUTCOME_FAULT;
  m.status = PROGRAM_SIGSEGV;
  m.fault_vector = 14;
  m.fault_rip = 0x401234;
  m.fault_addr = 0x10;
  EXPECT_EQ(described(m), "killed by SIGSEGV at rip 0x401234 (address 0x10)");
  m.status = PROGRAM_SIGFPE;
  m.fault_vector = 0;
  EXPECT_EQ(described(m), "killed by SIGFPE at rip 0x401234");
  m = thaw_mailbox{};
  m.outcome = OUTCOME_OUTPUT_LIMIT;
  m.stdout_len = MAILBOX_STDOUT_CAPACITY;
  EXPECT_EQ(described(m), "stdout over 1 MiB: killed");
  m.stderr_len = MAILBOX_STDERR_CAPACITY;
  EXPECT_EQ(described(m), "stderr over 64 KiB: killed");
  m = thaw_mailbox{};
  m.outcome = OUTCOME_NOT_READY;
  EXPECT_EQ(described(m), "ended before reading stdin");
  m.outcome = OUTCOME_POWER_OFF;
  m.status = POWER_OFF_RESTART;
  EXPECT_EQ(described(m), "restarted its guest (reboot(2))");
  m.status = POWER_OFF_POWER_OFF;
  EXPECT_EQ(described(m), "powered off its guest (reboot(2))");
  m.status = POWER_OFF_RESTART + 1;  // the snapshot's guest wrote a kind no runtime writes
  set_header(m);
  EXPECT_CONTAINS(read_response(mem_, kMailbox).problem, "power-off kind 3 is unknown");
}

TEST_F(ProgramMailboxTest, FindsTheMailboxThroughTheInfoPage) {
  EXPECT_CONTAINS(input_error_of([&] { read_program_info(mem_); }), "not loaded with a program");
  const auto elf = testing::build_program_elf(testing::simple_program_spec());
  loader::ProgramImageInput in;
  in.elf = elf;
  in.name = "prog";
  in.exe_path = "/prog";
  const auto layout = loader::load_program_image(mem_, in);
  const auto info = read_program_info(mem_);
  EXPECT_EQ(info.mailbox_addr, layout.mailbox_addr);
  EXPECT_EQ(info.mailbox_addr, kMailbox);
  EXPECT_EQ(info.stack_pointer, layout.stack_pointer);
  EXPECT_EQ(info.exe_path, "/prog");

  auto raw = mem_.read_obj<thaw_program_info>(GuestAddress(PROGRAM_INFO_ADDR));
  auto broken = raw;
  broken.mailbox_addr = kRam - 4096;  // the mailbox would run past RAM
  mem_.write_obj(GuestAddress(PROGRAM_INFO_ADDR), broken);
  EXPECT_CONTAINS(input_error_of([&] { read_program_info(mem_); }), "not inside guest RAM");
  broken = raw;
  broken.version = 2;
  mem_.write_obj(GuestAddress(PROGRAM_INFO_ADDR), broken);
  EXPECT_CONTAINS(input_error_of([&] { read_program_info(mem_); }), "version 2");
  broken = raw;
  broken.mailbox_size = 4096;
  mem_.write_obj(GuestAddress(PROGRAM_INFO_ADDR), broken);
  EXPECT_CONTAINS(input_error_of([&] { read_program_info(mem_); }), "mailbox_size");
  broken = raw;
  std::memset(broken.exe_path, 'a', sizeof broken.exe_path);
  mem_.write_obj(GuestAddress(PROGRAM_INFO_ADDR), broken);
  EXPECT_CONTAINS(input_error_of([&] { read_program_info(mem_); }), "NUL-terminated");
}

}  // namespace
}  // namespace thaw::vmm
