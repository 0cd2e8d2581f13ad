#include "vmm/loader/program_stack.h"

#include <elf.h>

#include <algorithm>
#include <cstring>

#include "base/errors.h"

namespace thaw::vmm::loader {

namespace {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kClockTicks = 100;  // USER_HZ, what times() counts in
constexpr const char kPlatform[] = "x86_64";

uint64_t align_down(uint64_t v, uint64_t a) { return v & ~(a - 1); }

bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

std::string key_of(const std::string& entry) { return entry.substr(0, entry.find('=')); }

}  // namespace

std::vector<std::string> program_environment(const std::vector<std::string>& user_env) {
  std::vector<std::string> env = default_program_environment();
  for (const auto& entry : user_env) {
    const auto eq = entry.find('=');
    if (eq == std::string::npos) throw InputError("--env '" + entry + "' has no '=': write it as KEY=VALUE");
    if (eq == 0) throw InputError("--env '" + entry + "' has an empty key: write it as KEY=VALUE");
    if (has_nul(entry)) throw InputError("--env entry for '" + key_of(entry) + "' contains a NUL byte");
    const std::string key = entry.substr(0, eq);
    auto same = std::find_if(env.begin(), env.end(), [&](const std::string& e) { return key_of(e) == key; });
    if (same != env.end()) {
      *same = entry;
    } else {
      env.push_back(entry);
    }
  }
  return env;
}

void check_program_strings(const std::vector<std::string>& argv, const std::vector<std::string>& envp) {
  uint64_t total = 0;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (has_nul(argv[i])) throw InputError("program argument " + std::to_string(i) + " contains a NUL byte");
    total += argv[i].size() + 1;
  }
  for (const auto& e : envp) {
    if (has_nul(e)) throw InputError("environment entry '" + key_of(e) + "' contains a NUL byte");
    total += e.size() + 1;
  }
  if (total > kMaxProgramStringBytes) {
    throw InputError("program arguments and environment take " + std::to_string(total) +
                     " bytes; the limit is " + std::to_string(kMaxProgramStringBytes) +
                     " (128 KiB): pass large inputs on stdin or in --files");
  }
}

InitialStack write_initial_stack(GuestMemory& mem, uint64_t stack_top, uint64_t stack_bottom,
                                 const InitialStackInput& in) {
  check_program_strings(in.argv, in.envp);
  if (has_nul(in.execfn)) throw InputError("program path '" + in.execfn + "' contains a NUL byte");

  InitialStack out;
  // Strings first, highest address first, as Linux's execve copies them.
  uint64_t strings_bytes = 0;
  for (const auto& a : in.argv) strings_bytes += a.size() + 1;
  for (const auto& e : in.envp) strings_bytes += e.size() + 1;
  out.execfn_addr = stack_top - 8 - (in.execfn.size() + 1);
  const uint64_t strings_start = out.execfn_addr - strings_bytes;
  out.platform_addr = align_down(strings_start, 16) - sizeof kPlatform;
  out.random_addr = out.platform_addr - in.random.size();

  const std::vector<std::pair<uint64_t, uint64_t>> auxv = {
      {AT_HWCAP, in.hwcap},
      {AT_PAGESZ, kPageSize},
      {AT_CLKTCK, kClockTicks},
      {AT_PHDR, in.phdr_addr},
      {AT_PHENT, sizeof(Elf64_Phdr)},
      {AT_PHNUM, in.phnum},
      {AT_BASE, 0},  // no program interpreter
      {AT_FLAGS, 0},
      {AT_ENTRY, in.entry},
      {AT_UID, 0},
      {AT_EUID, 0},
      {AT_GID, 0},
      {AT_EGID, 0},
      {AT_SECURE, 0},
      {AT_RANDOM, out.random_addr},
      {AT_HWCAP2, 0},
      {AT_EXECFN, out.execfn_addr},
      {AT_PLATFORM, out.platform_addr},
      {AT_NULL, 0},
  };
  const uint64_t words = 1 + (in.argv.size() + 1) + (in.envp.size() + 1) + 2 * auxv.size();
  out.stack_pointer = align_down(out.random_addr - 8 * words, 16);
  out.argv_addr = out.stack_pointer + 8;
  // Room for the program's own frames beyond what we put there.
  if (out.stack_pointer < stack_bottom || out.stack_pointer - stack_bottom < kPageSize) {
    throw InputError("program arguments and environment do not fit on the " +
                     std::to_string((stack_top - stack_bottom) >> 10) + " KiB stack");
  }

  // Build [stack_pointer, stack_top) on the host, then copy it in once.
  std::vector<uint8_t> image(stack_top - out.stack_pointer, 0);
  auto at = [&](uint64_t addr) { return image.data() + (addr - out.stack_pointer); };
  auto put_word = [&](uint64_t& addr, uint64_t value) {
    std::memcpy(at(addr), &value, 8);
    addr += 8;
  };
  std::memcpy(at(out.execfn_addr), in.execfn.c_str(), in.execfn.size() + 1);
  std::memcpy(at(out.platform_addr), kPlatform, sizeof kPlatform);
  std::memcpy(at(out.random_addr), in.random.data(), in.random.size());

  uint64_t string_at = strings_start;
  uint64_t table = out.stack_pointer;
  put_word(table, in.argv.size());
  auto put_strings = [&](const std::vector<std::string>& strings) {
    for (const auto& s : strings) {
      std::memcpy(at(string_at), s.c_str(), s.size() + 1);
      put_word(table, string_at);
      string_at += s.size() + 1;
    }
    put_word(table, 0);
  };
  put_strings(in.argv);
  put_strings(in.envp);
  for (const auto& [type, value] : auxv) {
    put_word(table, type);
    put_word(table, value);
  }
  mem.write(GuestAddress(out.stack_pointer), image, "program initial stack");
  return out;
}

}  // namespace thaw::vmm::loader
