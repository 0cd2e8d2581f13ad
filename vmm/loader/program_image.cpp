#include "vmm/loader/program_image.h"

#include <cpuid.h>
#include <sys/random.h>

#include <cerrno>
#include <cstddef>
#include <cstring>

#include "guest/mini/program_abi.h"
#include "vmm/loader/program_elf.h"
#include "vmm/loader/program_stack.h"
#include "base/errors.h"

namespace thaw::vmm::loader {

static_assert(offsetof(thaw_program_info, exe_path) == 0x80, "program_abi.h puts exe_path at +0x80");
static_assert(sizeof(thaw_program_info) <= PROGRAM_INFO_SIZE);
static_assert(sizeof(thaw_mailbox) <= MAILBOX_HEADER_SIZE);
static_assert(MAILBOX_SIZE % 4096 == 0);

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kMiB = 1ull << 20;

uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }
uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }
std::string mib(uint64_t bytes) { return std::to_string(align_up(bytes, kMiB) / kMiB) + " MiB"; }

// What Linux puts in AT_HWCAP on x86: CPUID leaf 1 EDX. The guest's CPUID
// comes from this host's, so its own answer matches.
uint64_t host_hwcap() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(1, &eax, &ebx, &ecx, &edx) == 0) return 0x178bfbff;  // a common x86-64 value
  return edx;
}

std::array<uint8_t, 16> host_random_bytes() {
  std::array<uint8_t, 16> bytes{};
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::getrandom(bytes.data() + done, bytes.size() - done, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw_errno("getrandom", "AT_RANDOM bytes for the program");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

void check_exe_path(const std::string& path) {
  if (path.empty() || path[0] != '/') throw InputError("program guest path '" + path + "' is not absolute");
  if (path.find('\0') != std::string::npos) throw InputError("program guest path contains a NUL byte");
  if (path.size() >= PROGRAM_EXE_PATH_MAX) {
    throw InputError("program guest path '" + path + "' is " + std::to_string(path.size()) +
                     " bytes; the limit is " + std::to_string(PROGRAM_EXE_PATH_MAX - 1));
  }
}

std::vector<std::string> program_argv(const ProgramImageInput& in) {
  std::vector<std::string> argv{in.exe_path};
  argv.insert(argv.end(), in.args.begin(), in.args.end());
  return argv;
}

}  // namespace

ProgramLayout plan_program_layout(uint64_t ram_bytes, uint64_t load_end, uint64_t files_size,
                                  const std::string& name) {
  if (ram_bytes > kMaxProgramRamBytes) {
    throw InputError("program '" + name + "': the guest has " + std::to_string(ram_bytes / kMiB) +
                     " MiB of RAM; program guests have at most 3072 MiB (3 GiB)");
  }
  // The least RAM for which the formula in the header fits (see there).
  const uint64_t brk_start = align_up(load_end, kPage);
  const uint64_t least_tail = align_up(brk_start + kMinProgramHeapBytes + PROGRAM_STACK_SIZE, PROGRAM_KERNEL_TAIL_ALIGN);
  const uint64_t needed = least_tail + align_up(files_size, kPage) + MAILBOX_SIZE;
  if (ram_bytes < needed) {
    throw InputError("program '" + name + "' needs " + mib(needed) + " (segments up to " + mib(load_end) +
                     ", " + mib(PROGRAM_STACK_SIZE) + " stack, " + mib(files_size) + " of files, " +
                     mib(MAILBOX_SIZE) + " mailbox) but the guest has " + std::to_string(ram_bytes / kMiB) +
                     " MiB: raise --mem");
  }
  ProgramLayout l;
  l.ram_top = ram_bytes;
  l.mailbox_addr = align_down(ram_bytes - MAILBOX_SIZE, kPage);
  l.mailbox_size = MAILBOX_SIZE;
  l.files_addr = align_down(l.mailbox_addr - files_size, kPage);
  l.files_size = files_size;
  l.stack_top = align_down(l.files_addr, PROGRAM_KERNEL_TAIL_ALIGN);
  l.stack_bottom = l.stack_top - PROGRAM_STACK_SIZE;
  l.mmap_top = l.stack_bottom;
  l.brk_start = brk_start;
  return l;
}

std::string guest_program_path(const std::string& host_path) {
  std::string base = host_path;
  while (base.size() > 1 && base.back() == '/') base.pop_back();
  if (auto slash = base.rfind('/'); slash != std::string::npos) base = base.substr(slash + 1);
  if (base.empty() || base == "/" || base == "." || base == "..") {
    throw InputError("program path '" + host_path + "' does not name a file");
  }
  return "/" + base;
}

ProgramLayout check_program_image(uint64_t ram_bytes, const ProgramImageInput& in) {
  check_exe_path(in.exe_path);
  check_program_strings(program_argv(in), program_environment(in.env));
  const ProgramElf elf = check_program_elf(in.elf, in.name);
  ProgramLayout layout = plan_program_layout(ram_bytes, elf.load_end, in.files_archive.size(), in.name);
  layout.entry = elf.entry;
  layout.load_bias = elf.bias;
  return layout;
}

ProgramLayout load_program_image(GuestMemory& mem, const ProgramImageInput& in) {
  // Everything that can refuse the input runs before the first write.
  check_exe_path(in.exe_path);
  const std::vector<std::string> argv = program_argv(in);
  const std::vector<std::string> envp = program_environment(in.env);
  check_program_strings(argv, envp);
  const ProgramElf elf0 = check_program_elf(in.elf, in.name);
  ProgramLayout layout = plan_program_layout(mem.size(), elf0.load_end, in.files_archive.size(), in.name);
  // Again with the stack's bottom as the limit: the same answer, said by the ELF checker.
  const ProgramElf elf = check_program_elf(in.elf, in.name, layout.stack_bottom);
  if (!mem.contains(GuestAddress(0), layout.ram_top)) {
    throw InputError("program guest RAM [0, " + std::to_string(layout.ram_top) + ") is not one region");
  }

  for (const auto& s : elf.segments) {
    auto dst = mem.slice(GuestAddress(s.addr), s.memsz, "program segment");
    std::memcpy(dst.data(), in.elf.data() + s.offset, s.filesz);
    // .bss: fresh RAM is zero at cold boot, but a reused memory must not leak.
    std::memset(dst.data() + s.filesz, 0, s.memsz - s.filesz);
  }
  if (!in.files_archive.empty()) mem.write(GuestAddress(layout.files_addr), in.files_archive, "program files");

  InitialStackInput stack_in;
  stack_in.execfn = in.exe_path;
  stack_in.argv = argv;
  stack_in.envp = envp;
  stack_in.entry = elf.entry;
  stack_in.phdr_addr = elf.phdr_addr;
  stack_in.phnum = elf.phnum;
  stack_in.hwcap = host_hwcap();
  stack_in.random = host_random_bytes();
  const InitialStack stack = write_initial_stack(mem, layout.stack_top, layout.stack_bottom, stack_in);
  layout.entry = elf.entry;
  layout.stack_pointer = stack.stack_pointer;
  layout.load_bias = elf.bias;

  thaw_program_info info{};
  info.magic = PROGRAM_INFO_MAGIC;
  info.version = PROGRAM_INFO_VERSION;
  info.entry = layout.entry;
  info.stack_pointer = layout.stack_pointer;
  info.brk_start = layout.brk_start;
  info.mmap_top = layout.mmap_top;
  info.stack_bottom = layout.stack_bottom;
  info.stack_top = layout.stack_top;
  info.files_addr = layout.files_addr;
  info.files_size = layout.files_size;
  info.mailbox_addr = layout.mailbox_addr;
  info.mailbox_size = layout.mailbox_size;
  info.ram_top = layout.ram_top;
  std::memcpy(info.exe_path, in.exe_path.c_str(), in.exe_path.size() + 1);
  auto page = mem.slice(GuestAddress(PROGRAM_INFO_ADDR), PROGRAM_INFO_SIZE, "program info page");
  std::memset(page.data(), 0, page.size());
  std::memcpy(page.data(), &info, sizeof info);

  auto header = mem.slice(GuestAddress(layout.mailbox_addr), MAILBOX_HEADER_SIZE, "program mailbox header");
  std::memset(header.data(), 0, header.size());
  return layout;
}

}  // namespace thaw::vmm::loader
