// Seccomp allow-lists: a thin layer over libseccomp that compiles a list of
// allowed system calls (with conditions on their arguments) into a BPF
// program once, and applies it to a thread as often as needed.
//
// A call not on the list traps: the SIGSYS handler writes one line naming
// the thread, its filter and the call to stderr, and ends the whole
// process with exit status kSeccompExitStatus. The call itself never runs.
// (The handler only reports; the kernel enforces the filter, which stays in
// force for everything the thread does afterwards.)
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <string>
#include <vector>

namespace thaw {

// 128 + SIGSYS, what a shell shows for a process SIGSYS killed.
inline constexpr int kSeccompExitStatus = 159;

// One allowed system call. With conditions, every one must hold:
// (argument[arg] & mask) == value. Several rules for one call are OR-ed.
struct SeccompRule {
  struct ArgMatch {
    unsigned arg = 0;
    uint64_t mask = ~0ull;
    uint64_t value = 0;
  };
  long syscall = -1;  // __NR_*
  std::vector<ArgMatch> conditions;
  // Non-zero: the call fails with this errno instead of running (clone3 ->
  // ENOSYS, so glibc falls back to clone, whose flags a filter can read).
  int fail_with_errno = 0;
};

// Rule helpers for the allow-lists.
SeccompRule seccomp_any_arguments(long nr);
// mmap/mprotect without PROT_EXEC (argument 2): no new code on the thread.
SeccompRule seccomp_without_exec(long nr);
// The call with (argument[arg] & mask) == value.
SeccompRule seccomp_arg_equals(long nr, unsigned arg, uint64_t value, uint64_t mask = ~0ull);
// ioctl with this request (compared on the low 32 bits: the kernel's
// request is an unsigned int).
SeccompRule seccomp_ioctl_request(unsigned long request);

// What any filtered thread of thaw needs whatever its job: fstat of an fd
// (glibc's stdio sizing a stream's buffer at its first line), locks and
// condition variables, its own ids, signal masks and returns, malloc
// (never executable), clocks where the vDSO falls back, and its end.
std::vector<SeccompRule> seccomp_thread_basics();
// What a filtered thread needs to start threads of its own (glibc's
// pthread_create on a stack it is given, and the new thread's first
// calls): clone with CLONE_THREAD (clone3 fails with ENOSYS, so glibc falls
// back to clone), rseq and set_robust_list. The new thread runs under the
// same filter: it can do nothing its creator could not. This is what lets
// a FilteredThreadSpawner start threads already filtered.
std::vector<SeccompRule> seccomp_thread_creation_rules();
// `own` followed by seccomp_thread_basics(): a thread's whole allow-list.
std::vector<SeccompRule> with_thread_basics(std::vector<SeccompRule> own);

class SeccompFilter {
 public:
  // Compiles `allowed` for x86-64 with libseccomp, plus what the SIGSYS
  // reporter needs (write to stderr, exit_group). `name` ("vcpu") appears
  // in the report. Throws SysError naming the rule libseccomp refused.
  static SeccompFilter compile(std::string name, const std::vector<SeccompRule>& allowed);

  // Sets no_new_privs and loads the filter on the calling thread only
  // (threads it creates later inherit it, and the first filter a process
  // applies is what their SIGSYS reports name). Installs the process's
  // SIGSYS reporter first. Throws SysError when the kernel refuses.
  void apply_to_this_thread() const;
  // For a thread that inherited this filter from its creator
  // (FilteredThreadSpawner): its SIGSYS report names this filter.
  void name_this_thread() const;

  const std::string& name() const { return name_; }
  size_t rule_count() const { return rule_count_; }
  size_t instruction_count() const { return program_.size(); }

 private:
  SeccompFilter(std::string name, std::vector<sock_filter> program, size_t rules)
      : name_(std::move(name)), program_(std::move(program)), rule_count_(rules) {}

  std::string name_;
  std::vector<sock_filter> program_;
  size_t rule_count_ = 0;
};

// The calling thread's seccomp mode: 0 none, 1 strict, 2 filter (the
// "Seccomp:" line of /proc/thread-self/status).
int seccomp_mode_of_this_thread();

}  // namespace thaw
