// fuzz_program_mailbox: vmm/program_mailbox.h's read_response, which reads
// what the guest wrote into the program mailbox (outcome, lengths, output,
// the unknown-syscall list) and must never trust it. The input becomes the
// mailbox header page and the start of the stdout and stderr areas; the
// first byte picks where the mailbox sits, including places where it runs
// past the end of guest RAM.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "guest/mini/program_abi.h"
#include "vmm/memory/guest_memory.h"
#include "vmm/program_mailbox.h"
#include "base/errors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static auto mem = thaw::vmm::GuestMemory::anonymous(8ull << 20);
  const uint64_t ram = mem.size();
  const uint64_t choices[] = {0x200000, ram - MAILBOX_SIZE, ram - MAILBOX_SIZE + 8, ram - 8, ram, ~0ull - 0xfff};
  const uint64_t addr = choices[data[0] % (sizeof choices / sizeof choices[0])];
  data++, size--;
  if (addr <= ram - MAILBOX_SIZE) {
    // Only what read_response's checks look at is cleared per input; stale
    // output bytes elsewhere change no decision.
    uint8_t* box = mem.host_base() + addr;
    std::memset(box, 0, MAILBOX_HEADER_SIZE);
    std::memset(box + MAILBOX_STDOUT_OFFSET, 0, 4096);
    std::memset(box + MAILBOX_STDERR_OFFSET, 0, 4096);
    const size_t header = std::min<size_t>(size, MAILBOX_HEADER_SIZE);
    std::memcpy(box, data, header);
    const size_t out = std::min<size_t>(size - header, 4096);
    std::memcpy(box + MAILBOX_STDOUT_OFFSET, data + header, out);
    std::memcpy(box + MAILBOX_STDERR_OFFSET, data + header + out, std::min<size_t>(size - header - out, 4096));
  }
  try {
    auto r = thaw::vmm::read_response(mem, addr);
    if (r.stdout_bytes.size() > MAILBOX_STDOUT_CAPACITY || r.stderr_bytes.size() > MAILBOX_STDERR_CAPACITY ||
        r.unknown_syscalls.size() > MAILBOX_UNKNOWN_SYSCALLS_MAX) {
      __builtin_trap();
    }
    (void)thaw::vmm::describe(r);
  } catch (const thaw::InputError&) {
    if (addr <= ram - MAILBOX_SIZE) __builtin_trap();  // only a mailbox outside RAM may throw
  }
  return 0;
}
