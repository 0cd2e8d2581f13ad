#include "base/seccomp_filter.h"

#include <fcntl.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <sched.h>
#include <sys/sysinfo.h>
#include <seccomp.h>
#include <signal.h>
#include <ucontext.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

#include "base/errors.h"
#include "base/linux_syscall_names.h"
#include "base/unique_fd.h"

namespace thaw {

namespace {

// The filter each thread runs under, for the SIGSYS report. Static TLS, so
// the handler may read it.
thread_local const char* t_filter_name = nullptr;
thread_local pid_t t_thread_id = 0;
// The first filter the process applied: what a thread that inherited its
// filter (and set no name of its own) runs under.
std::atomic<const char*> g_inherited_filter_name{nullptr};

// Async-signal-safe: only write(2) and stack buffers.
void append(char* buf, size_t& len, size_t cap, const char* text) {
  while (*text != '\0' && len + 1 < cap) buf[len++] = *text++;
}

void append_number(char* buf, size_t& len, size_t cap, uint64_t value) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0 && n < sizeof digits);
  while (n > 0 && len + 1 < cap) buf[len++] = digits[--n];
}

// Runs under the filter that trapped: it may only make the calls compile()
// adds to every filter (write to stderr, exit_group).
void append_hex(char* buf, size_t& len, size_t cap, uint64_t value) {
  append(buf, len, cap, "0x");
  bool started = false;
  for (int shift = 60; shift >= 0; shift -= 4) {
    unsigned digit = (value >> shift) & 0xf;
    if (digit == 0 && !started && shift != 0) continue;
    started = true;
    if (len + 1 < cap) buf[len++] = "0123456789abcdef"[digit];
  }
}

void report_forbidden_call(int, siginfo_t* info, void* context) {
  char line[256];
  size_t len = 0;
  const char* filter = t_filter_name != nullptr ? t_filter_name : g_inherited_filter_name.load();
  append(line, len, sizeof line, "thaw: seccomp: thread ");
  append_number(line, len, sizeof line, static_cast<uint64_t>(t_thread_id != 0 ? t_thread_id : ::gettid()));
  append(line, len, sizeof line, " (filter '");
  append(line, len, sizeof line, filter != nullptr ? filter : "?");
  append(line, len, sizeof line, "') made a forbidden system call ");
  append_number(line, len, sizeof line, static_cast<uint64_t>(info->si_syscall));
  const char* name = linux_syscall_name_or_null(static_cast<uint64_t>(info->si_syscall));
  if (name != nullptr) {
    append(line, len, sizeof line, " (");
    append(line, len, sizeof line, name);
    append(line, len, sizeof line, ")");
  }
  if (info->si_syscall == SYS_ioctl && context != nullptr) {
    // Which request: the filters allow ioctl by request number.
    const auto* uc = static_cast<const ucontext_t*>(context);
    append(line, len, sizeof line, " request ");
    append_hex(line, len, sizeof line, static_cast<uint64_t>(uc->uc_mcontext.gregs[REG_RSI]));
  }
  append(line, len, sizeof line, "; ending the process\n");
  [[maybe_unused]] auto written = ::write(STDERR_FILENO, line, len);
  ::syscall(SYS_exit_group, kSeccompExitStatus);
}

void install_sigsys_reporter() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction action {};
    action.sa_sigaction = report_forbidden_call;
    action.sa_flags = SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    if (::sigaction(SIGSYS, &action, nullptr) != 0) throw_errno("sigaction", "seccomp SIGSYS reporter");
    // glibc's malloc reads /sys/devices/system/cpu/online the first time
    // the process needs a ninth arena, on whichever thread that happens:
    // a filtered thread would die of the openat. Fixing the limit now, at
    // glibc's own default (8 per CPU), leaves nothing to read later.
    ::mallopt(M_ARENA_MAX, 8 * std::max(1, ::get_nprocs()));
  });
}

// Owns a libseccomp context.
struct Context {
  scmp_filter_ctx ctx = nullptr;
  ~Context() {
    if (ctx != nullptr) seccomp_release(ctx);
  }
};

std::vector<sock_filter> export_program(scmp_filter_ctx ctx, const std::string& name) {
  // libseccomp 2.5 exports only to an fd.
  UniqueFd memfd(::memfd_create("thaw-seccomp", MFD_CLOEXEC));
  if (!memfd) throw_errno("memfd_create", "exporting seccomp filter '" + name + "'");
  if (int rc = seccomp_export_bpf(ctx, memfd.get()); rc < 0) {
    throw SysError("seccomp_export_bpf", -rc, "filter '" + name + "'");
  }
  off_t size = ::lseek(memfd.get(), 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0) {
    throw SysError("seccomp_export_bpf", EINVAL, "filter '" + name + "' exported " + std::to_string(size) + " bytes");
  }
  std::vector<sock_filter> program(static_cast<size_t>(size) / sizeof(sock_filter));
  if (::pread(memfd.get(), program.data(), static_cast<size_t>(size), 0) != size) {
    throw_errno("pread", "exported seccomp filter '" + name + "'");
  }
  return program;
}

}  // namespace

SeccompFilter SeccompFilter::compile(std::string name, const std::vector<SeccompRule>& allowed) {
  Context context;
  context.ctx = seccomp_init(SCMP_ACT_TRAP);
  if (context.ctx == nullptr) throw SysError("seccomp_init", ENOMEM, "filter '" + name + "'");
  // Only x86-64 calls: a 32-bit int 0x80 call would be another arch and trap.
  // Every filter lets the SIGSYS reporter write its line and end the process.
  std::vector<SeccompRule> rules = allowed;
  rules.push_back({SYS_write, {{.arg = 0, .mask = ~0ull, .value = STDERR_FILENO}}});
  rules.push_back({SYS_exit_group, {}});
  for (const auto& rule : rules) {
    std::vector<scmp_arg_cmp> cmps;
    for (const auto& c : rule.conditions) {
      cmps.push_back(SCMP_CMP64(c.arg, SCMP_CMP_MASKED_EQ, c.mask, c.value));
    }
    uint32_t action = rule.fail_with_errno != 0 ? SCMP_ACT_ERRNO(static_cast<uint32_t>(rule.fail_with_errno))
                                                : SCMP_ACT_ALLOW;
    int rc = seccomp_rule_add_array(context.ctx, action, static_cast<int>(rule.syscall),
                                    static_cast<unsigned>(cmps.size()), cmps.data());
    if (rc < 0) {
      throw SysError("seccomp_rule_add", -rc,
                     "filter '" + name + "', " + linux_syscall_name(static_cast<uint64_t>(rule.syscall)));
    }
  }
  auto program = export_program(context.ctx, name);
  return SeccompFilter(std::move(name), std::move(program), allowed.size());
}

void SeccompFilter::apply_to_this_thread() const {
  install_sigsys_reporter();
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) throw_errno("prctl(PR_SET_NO_NEW_PRIVS)", "filter '" + name_ + "'");
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(program_.size());
  prog.filter = const_cast<sock_filter*>(program_.data());
  // Set before the filter: the reporter may run at the first forbidden call.
  t_filter_name = name_.c_str();
  t_thread_id = static_cast<pid_t>(::syscall(SYS_gettid));
  const char* none = nullptr;
  g_inherited_filter_name.compare_exchange_strong(none, name_.c_str());
  // seccomp(2) without TSYNC: this thread only.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
    t_filter_name = nullptr;
    throw_errno("seccomp(SECCOMP_SET_MODE_FILTER)", "filter '" + name_ + "'");
  }
}

void SeccompFilter::name_this_thread() const {
  t_filter_name = name_.c_str();
  t_thread_id = static_cast<pid_t>(::syscall(SYS_gettid));
}

int seccomp_mode_of_this_thread() { return ::prctl(PR_GET_SECCOMP, 0, 0, 0, 0); }

SeccompRule seccomp_any_arguments(long nr) { return SeccompRule{nr, {}}; }

SeccompRule seccomp_arg_equals(long nr, unsigned arg, uint64_t value, uint64_t mask) {
  return SeccompRule{nr, {{.arg = arg, .mask = mask, .value = value}}};
}

SeccompRule seccomp_ioctl_request(unsigned long request) {
  return seccomp_arg_equals(SYS_ioctl, 1, request, 0xffff'ffffull);
}

SeccompRule seccomp_without_exec(long nr) { return SeccompRule{nr, {{.arg = 2, .mask = PROT_EXEC, .value = 0}}}; }

std::vector<SeccompRule> seccomp_thread_basics() {
  auto madvise_advice = [](long advice) {
    return SeccompRule{__NR_madvise, {{.arg = 2, .mask = ~0ull, .value = static_cast<uint64_t>(advice)}}};
  };
  return {
      seccomp_any_arguments(__NR_fstat),
      SeccompRule{__NR_newfstatat, {{.arg = 3, .mask = ~0ull, .value = AT_EMPTY_PATH}}},
      seccomp_any_arguments(__NR_futex),
      seccomp_any_arguments(__NR_sched_yield),
      seccomp_any_arguments(__NR_getpid),
      seccomp_any_arguments(__NR_gettid),
      seccomp_any_arguments(__NR_rt_sigreturn),
      seccomp_any_arguments(__NR_rt_sigprocmask),
      seccomp_any_arguments(__NR_restart_syscall),
      seccomp_without_exec(__NR_mmap),
      seccomp_without_exec(__NR_mprotect),
      seccomp_any_arguments(__NR_munmap),
      seccomp_any_arguments(__NR_mremap),
      seccomp_any_arguments(__NR_brk),
      madvise_advice(MADV_DONTNEED),
      madvise_advice(MADV_FREE),
      seccomp_any_arguments(__NR_clock_gettime),
      seccomp_any_arguments(__NR_gettimeofday),
      seccomp_any_arguments(__NR_clock_nanosleep),
      seccomp_any_arguments(__NR_nanosleep),
      seccomp_any_arguments(__NR_exit),
      seccomp_any_arguments(__NR_exit_group),
  };
}

std::vector<SeccompRule> seccomp_thread_creation_rules() {
  return {
      SeccompRule{__NR_clone3, {}, ENOSYS},
      seccomp_arg_equals(__NR_clone, 0, CLONE_THREAD, CLONE_THREAD),
      seccomp_any_arguments(__NR_rseq),
      seccomp_any_arguments(__NR_set_robust_list),
  };
}

std::vector<SeccompRule> with_thread_basics(std::vector<SeccompRule> own) {
  auto basics = seccomp_thread_basics();
  own.insert(own.end(), basics.begin(), basics.end());
  return own;
}

}  // namespace thaw
