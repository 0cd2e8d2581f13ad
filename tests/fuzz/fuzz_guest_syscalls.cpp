// fuzz_guest_syscalls: the mini guest's function runtime (guest/mini/
// program_*.c), built for the host. A user's program is untrusted, and the
// runtime answers its system calls in ring 0: every number and argument,
// and every byte of user memory they point at, comes from the input here,
// as from a hostile program. User memory and the mailbox sit between guard
// pages and the files archive is a heap buffer, so an access the runtime's
// checks let past an end faults or is seen by ASan; after each call the
// runtime's own bookkeeping is checked.
//
// Input: a stream of operations (FuzzedDataProvider): write bytes into user
// memory, place a path from a list of interesting ones, make a system call
// (mostly one the runtime implements), or take a CPU exception.
#include <fuzzer/FuzzedDataProvider.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "program_arch.h"
#include "program_runtime.h"
#include "tests/guest/runtime_inputs.h"

namespace {

// 2 MiB of user memory: [PROGRAM_USER_BASE, kStackTop). The files archive
// must start at or above the next 2 MiB boundary (program_info_check).
constexpr uint64_t kStackTop = PROGRAM_USER_BASE + 0x200000;
constexpr uint64_t kStackBottom = kStackTop - 0x40000;
constexpr uint64_t kBrkStart = PROGRAM_USER_BASE + 0x40000;
constexpr uint64_t kUserSize = kStackTop - PROGRAM_USER_BASE;

// The system calls the runtime implements (program_syscalls.c), so that
// most calls reach real code rather than the unknown-call path.
constexpr uint16_t kSyscalls[] = {
    0,   1,   2,   3,   4,   5,   6,   7,   8,   9,   10,  11,  12,  13,  14,  16,  17,  18,  19,
    20,  21,  24,  25,  28,  32,  33,  35,  39,  56,  57,  58,  59,  60,  62,  63,  72,  77,  79,
    80,  87,  89,  95,  96,  97,  99,  102, 104, 107, 108, 110, 131, 158, 169, 186, 200, 201, 202,
    204, 217, 218, 228, 229, 230, 231, 234, 257, 262, 263, 267, 269, 271, 273, 292, 302, 318, 332,
    334, 439};

const char* const kPaths[] = {
    "/etc/hello.txt", "etc/hello.txt", "/etc/link", "/etc/loop-a", "/etc/dangling", "/etc/abs-link",
    "/etc", "/etc/", "/", ".", "..", "/../../etc/./hello.txt", "/tmp", "/tmp/new", "/tmp/new/x",
    "/tmp/../tmp/a", "/dev/null", "/dev/zero", "/dev/urandom", "/proc/self/exe", "/bin/tool",
    "/deep/a/b/c/d/file", "/deep/a/b/c/d/../../../../../../etc", "", "//", "/etc/hello.txt/",
    "/nonexistent", "tmp/rel"};

std::vector<uint8_t> make_archive() {
  return thaw_guest_test::CpioBuilder()
      .dir("./etc")
      .file("./etc/hello.txt", "hello, world\n")
      .symlink("./etc/link", "hello.txt")
      .symlink("./etc/abs-link", "/etc/hello.txt")
      .symlink("./etc/loop-a", "loop-b")
      .symlink("./etc/loop-b", "loop-a")
      .symlink("./etc/dangling", "/nowhere")
      .file("./bin/tool", std::string(5000, 'x'), 0100755)
      .file("./deep/a/b/c/d/file", "deep", 0100600)
      .finish();
}

// Memory with a PROT_NONE page on each side, so that an access just past
// either end faults (ASan does not see into mmap'd memory). Made once;
// each input starts from zero pages again (MADV_DONTNEED), which costs only
// the pages the last input touched.
class GuardedRegion {
 public:
  explicit GuardedRegion(size_t size) : size_(size) {
    const size_t page = PROGRAM_PAGE_SIZE;
    const size_t mapped = (size + page - 1) / page * page + 2 * page;
    void* p = ::mmap(nullptr, mapped, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) __builtin_trap();
    // Flush with the upper guard, so a read of the byte after the end faults.
    base_ = static_cast<uint8_t*>(p) + mapped - page - size;
    if (::mprotect(static_cast<uint8_t*>(p) + page, mapped - 2 * page, PROT_READ | PROT_WRITE) != 0) __builtin_trap();
    if (reinterpret_cast<uintptr_t>(base_) % 8 != 0) __builtin_trap();
  }
  uint8_t* get() const { return base_; }
  void clear() {
    const uintptr_t page = PROGRAM_PAGE_SIZE;
    const uintptr_t first = reinterpret_cast<uintptr_t>(base_) / page * page;
    std::memset(base_, 0, first + page - reinterpret_cast<uintptr_t>(base_));  // a partial first page
    ::madvise(reinterpret_cast<void*>(first + page), reinterpret_cast<uintptr_t>(base_) + size_ - first - page,
              MADV_DONTNEED);
  }

 private:
  size_t size_;
  uint8_t* base_;
};

uint64_t tsc = 1000000;

// A buffer below the break that calls can share, as a program's would be.
constexpr uint64_t kScratchBuffer = kBrkStart - 0x1000;

// What earlier operations left that later calls are likely to pass on, as
// a program would: where the last path went, the last call's result (an fd,
// a mapping).
struct Recent {
  uint64_t path = PROGRAM_USER_BASE;
  uint64_t result = 0;
};

uint64_t argument(FuzzedDataProvider& in, const Recent& recent) {
  switch (in.ConsumeIntegralInRange<int>(0, 8)) {
    case 0: return static_cast<uint64_t>(in.ConsumeIntegralInRange<int64_t>(-8, 80));  // fds, flags, counts
    case 1: return PROGRAM_USER_BASE + in.ConsumeIntegralInRange<uint64_t>(0, kUserSize - 1);
    case 2: return kStackTop - in.ConsumeIntegralInRange<uint64_t>(0, 64);  // the edge of user memory
    case 3: return static_cast<uint64_t>(-100);                              // AT_FDCWD
    case 4: return in.ConsumeIntegralInRange<uint64_t>(0, 1) << in.ConsumeIntegralInRange<int>(0, 63);
    case 5: return recent.path;
    case 6: return recent.result;
    case 7: return kScratchBuffer + in.ConsumeIntegralInRange<uint64_t>(0, 64);
    default: return in.ConsumeIntegral<uint64_t>();
  }
}

// The runtime's own invariants: what its code assumes of its tables.
void check(const program_runtime& rt) {
  const auto* mb = reinterpret_cast<const thaw_mailbox*>(rt.mailbox);
  if (mb->stdout_len > MAILBOX_STDOUT_CAPACITY || mb->stderr_len > MAILBOX_STDERR_CAPACITY) __builtin_trap();
  if (mb->unknown_syscall_count > MAILBOX_UNKNOWN_SYSCALLS_MAX) __builtin_trap();
  if (rt.mapping_count > PROGRAM_MAX_MAPPINGS) __builtin_trap();
  for (uint32_t i = 0; i < rt.mapping_count; ++i) {
    const mapping& m = rt.mappings[i];
    if (m.start >= m.end || m.start < PROGRAM_USER_BASE || m.end > kStackTop) __builtin_trap();
    if (m.start % PROGRAM_PAGE_SIZE || m.end % PROGRAM_PAGE_SIZE) __builtin_trap();
    if (i > 0 && rt.mappings[i - 1].end > m.start) __builtin_trap();
  }
  if (rt.brk_current < rt.info.brk_start || rt.brk_current > rt.info.mmap_top) __builtin_trap();
  for (int fd = 0; fd < PROGRAM_MAX_FDS; ++fd) {
    const int slot = rt.fds[fd];
    if (slot == -1) continue;
    if (slot < 0 || slot >= PROGRAM_MAX_OPEN_FILES || rt.open_files[slot].refs == 0) __builtin_trap();
    if (rt.open_files[slot].kind == FILE_FREE) __builtin_trap();
  }
  for (const tmp_file& t : rt.tmp) {
    if (t.size > t.capacity || t.name_len >= PROGRAM_TMP_NAME_MAX) __builtin_trap();
    if (t.capacity != 0 && !user_range_ok(&rt, t.addr, t.capacity)) __builtin_trap();
  }
  if (rt.pending_count > PROGRAM_PENDING_COPIES) __builtin_trap();
}

// Where ring 3 will find [user, user + len): the runtime's memory or a
// window, as the guest's page tables map them. nullptr if nowhere.
const uint8_t* ring3_view(const program_runtime& rt, uint64_t user, uint64_t len, bool write) {
  if (user_range_ok(&rt, user, len)) return static_cast<const uint8_t*>(user_ptr(&rt, user));
  for (uint32_t i = 0; i < rt.window_count; ++i) {
    const user_window& w = rt.windows[i];
    if (write && !w.writable) continue;
    if (user >= w.user && user - w.user <= w.size && len <= w.size - (user - w.user)) return w.kernel + (user - w.user);
  }
  return nullptr;
}

// A queued copy runs in ring 3 through its user addresses: they must name
// exactly the bytes ring 0 meant, and the destination must be writable there.
void check_pending_copies(const program_runtime& rt) {
  for (uint32_t i = 0; i < rt.pending_count; ++i) {
    const pending_copy& c = rt.pending[i];
    if (c.len == 0 || ring3_view(rt, c.user_dst, c.len, true) != c.dst) __builtin_trap();
    if (ring3_view(rt, c.user_src, c.len, false) != c.src) __builtin_trap();
  }
}

}  // namespace

// The machine layer the runtime calls (program_arch.h).
extern "C" {
uint64_t program_arch_tsc(void) { return tsc += 1000; }
void program_arch_set_fs_base(uint64_t) {}
void program_arch_ready_point(void) {}
void program_arch_log(const char*, uint64_t) {}
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<uint8_t> archive = make_archive();
  static GuardedRegion user(kUserSize);
  static GuardedRegion mailbox(MAILBOX_SIZE);
  static auto rt_storage = std::make_unique<program_runtime>();
  user.clear();
  mailbox.clear();
  FuzzedDataProvider in(data, size);
  tsc = 1000000;
  uint64_t control[512];
  thaw_guest_test::fill_control_page(control);
  const thaw_program_info info = thaw_guest_test::host_program_info(kStackTop, kStackBottom, kBrkStart, archive.size());
  if (program_info_check(&info, 0) != nullptr) __builtin_trap();  // the harness's own layout

  // The request: stdin from the input, as a client's payload would be.
  auto* mb = reinterpret_cast<thaw_mailbox*>(mailbox.get());
  const auto stdin_bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 256));
  mb->magic = MAILBOX_MAGIC;
  mb->stdin_len = stdin_bytes.size();
  if (!stdin_bytes.empty()) std::memcpy(mailbox.get() + MAILBOX_STDIN_OFFSET, stdin_bytes.data(), stdin_bytes.size());

  program_runtime* rt = rt_storage.get();
  *rt = program_runtime{};
  program_runtime_init(rt, &info, reinterpret_cast<intptr_t>(user.get()) - static_cast<intptr_t>(PROGRAM_USER_BASE),
                       archive.data(), mb, control, 1000000);
  if (in.ConsumeBool()) thaw_guest_test::add_ring3_windows(rt, mailbox.get());  // copies then queue for ring 3
  check(*rt);
  Recent recent;
  for (int ops = 0; ops < 64 && in.remaining_bytes() > 0 && !rt->finished; ++ops) {
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0: {  // the program writes its memory (iovecs, structs, buffers)
        const uint64_t at = in.ConsumeIntegralInRange<uint64_t>(0, kUserSize - 1);
        const auto bytes = in.ConsumeBytes<uint8_t>(in.ConsumeIntegralInRange<size_t>(0, 64));
        const size_t n = std::min<uint64_t>(bytes.size(), kUserSize - at);
        if (n != 0) std::memcpy(user.get() + at, bytes.data(), n);
        break;
      }
      case 1: {  // a path, NUL-terminated, somewhere in user memory
        const std::string path = kPaths[in.ConsumeIntegralInRange<size_t>(0, std::size(kPaths) - 1)];
        const uint64_t at = in.ConsumeIntegralInRange<uint64_t>(0, kUserSize - path.size() - 1);
        std::memcpy(user.get() + at, path.c_str(), path.size() + 1);
        recent.path = PROGRAM_USER_BASE + at;
        break;
      }
      case 2: {  // a CPU exception in ring 3
        const uint64_t vector = in.ConsumeIntegralInRange<uint64_t>(0, 40);
        program_fault(rt, vector, argument(in, recent), argument(in, recent));
        break;
      }
      default: {  // a system call
        const uint64_t nr = in.ConsumeBool() ? kSyscalls[in.ConsumeIntegralInRange<size_t>(0, std::size(kSyscalls) - 1)]
                                             : in.ConsumeIntegral<uint16_t>();
        uint64_t a[6];
        for (uint64_t& v : a) v = argument(in, recent);
        recent.result = static_cast<uint64_t>(program_syscall(rt, nr, a[0], a[1], a[2], a[3], a[4], a[5]));
        check_pending_copies(*rt);
        program_run_pending_copies(rt);
        break;
      }
    }
    check(*rt);
  }
  return 0;
}
