// A template worker's allow-list (rpc/daemon/daemon_seccomp.h), applied in a
// child process: what a worker does runs (KVM's and userfaultfd's ioctls,
// files, unix sockets, new threads through glibc's clone fallback), and
// what an escaped guest would reach for next ends the process naming the
// call: a new program or process, a network socket, ptrace, a signal to
// another process, executable memory, an ioctl thaw never issues. thawd's
// own (its templates in workers): TCP sockets, chmod and pidfds run; KVM,
// userfaultfd, execve and fork end it.
#include "rpc/daemon/daemon_seccomp.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "vmm/kvm/kvm_abi.h"

namespace thaw::daemon {
namespace {

class DaemonSeccomp : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

template <class Body>
void under_worker_filter(Body body) {
  template_worker_filter().apply_to_this_thread();
  body();
  ::syscall(SYS_exit_group, 0);
}

TEST_F(DaemonSeccomp, WhatAWorkerDoesRuns) {
  EXPECT_EXIT(under_worker_filter([] {
                // KVM and userfaultfd requests on a bad fd: allowed, so EBADF.
                for (unsigned long request :
                     {vmm::kvm::abi::kGetSupportedCpuid, vmm::kvm::abi::kSetCpuid2, vmm::kvm::abi::kGetMsrs,
                      vmm::kvm::abi::kSetMsrs, vmm::kvm::abi::kGetXsave, vmm::kvm::abi::kSetXsave,
                      static_cast<unsigned long>(KVM_CREATE_VM), static_cast<unsigned long>(KVM_RUN),
                      static_cast<unsigned long>(KVM_SET_USER_MEMORY_REGION)}) {
                  if (::ioctl(-1, request, 0) != -1 || errno != EBADF) ::syscall(SYS_exit_group, 2);
                }
                int fd = ::open("/proc/self/status", O_RDONLY | O_CLOEXEC);
                if (fd < 0) ::syscall(SYS_exit_group, 3);
                ::close(fd);
                int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (s < 0) ::syscall(SYS_exit_group, 4);
                ::close(s);
                // glibc tries clone3, gets ENOSYS, and starts the thread with clone.
                int ran = 0;
                std::thread([&] { ran = 1; }).join();
                if (ran != 1) ::syscall(SYS_exit_group, 5);
                std::string grown(1 << 22, 'x');  // malloc, mmap without PROT_EXEC
                [[maybe_unused]] auto n = ::write(STDERR_FILENO, "ok\n", 3);
              }),
              ::testing::ExitedWithCode(0), "ok");
}

TEST_F(DaemonSeccomp, ANewProgramEndsTheProcess) {
  EXPECT_EXIT(under_worker_filter([] { ::syscall(SYS_execve, "/bin/true", nullptr, nullptr); }),
              ::testing::ExitedWithCode(kSeccompExitStatus),
              "filter 'worker'\\) made a forbidden system call 59 \\(execve\\)");
}

TEST_F(DaemonSeccomp, ANewProcessEndsTheProcess) {
  // clone without CLONE_THREAD is a fork.
  EXPECT_EXIT(under_worker_filter([] { ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 56 \\(clone\\)");
}

TEST_F(DaemonSeccomp, ANetworkSocketEndsTheProcess) {
  EXPECT_EXIT(under_worker_filter([] { ::socket(AF_INET, SOCK_STREAM, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 41 \\(socket\\)");
}

TEST_F(DaemonSeccomp, PtraceEndsTheProcess) {
  EXPECT_EXIT(under_worker_filter([] { ::ptrace(PTRACE_ATTACH, 1, nullptr, nullptr); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 101 \\(ptrace\\)");
}

TEST_F(DaemonSeccomp, ASignalToAnotherProcessEndsTheProcess) {
  EXPECT_EXIT(under_worker_filter([] { ::kill(1, 0); }), ::testing::ExitedWithCode(kSeccompExitStatus),
              "forbidden system call 62 \\(kill\\)");
  EXPECT_EXIT(under_worker_filter([] { ::syscall(SYS_tgkill, 1, 1, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 234 \\(tgkill\\)");
}

TEST_F(DaemonSeccomp, ExecutableMemoryEndsTheProcess) {
  EXPECT_EXIT(under_worker_filter([] {
                ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
              }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 9 \\(mmap\\)");
}

TEST_F(DaemonSeccomp, AnIoctlThawNeverIssuesEndsTheProcessNamingIt) {
  // TIOCSTI: pushing bytes into a terminal's input.
  EXPECT_EXIT(under_worker_filter([] { ::ioctl(0, TIOCSTI, "x"); }), ::testing::ExitedWithCode(kSeccompExitStatus),
              "forbidden system call 16 \\(ioctl\\) request 0x5412");
}

}  // namespace
}  // namespace thaw::daemon

namespace thaw::daemon {
namespace {

template <class Body>
void under_thawd_filter(Body body) {
  thawd_filter().apply_to_this_thread();
  body();
  ::syscall(SYS_exit_group, 0);
}

TEST_F(DaemonSeccomp, WhatThawdDoesRuns) {
  EXPECT_EXIT(under_thawd_filter([] {
                // Its TCP listener and metrics endpoint, and its unix socket's mode.
                for (int family : {AF_UNIX, AF_INET, AF_INET6}) {
                  int s = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
                  if (s < 0 && errno != EAFNOSUPPORT) ::syscall(SYS_exit_group, 2);
                  if (s >= 0) ::close(s);
                }
                if (::chmod("/nonexistent-thaw-test", 0660) == 0 || errno != ENOENT) ::syscall(SYS_exit_group, 3);
                // Watching a worker: a pidfd of itself here.
                int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
                if (pidfd < 0) ::syscall(SYS_exit_group, 4);
                ::close(pidfd);
                int ran = 0;
                std::thread([&] { ran = 1; }).join();
                if (ran != 1) ::syscall(SYS_exit_group, 5);
                [[maybe_unused]] auto n = ::write(STDERR_FILENO, "ok\n", 3);
              }),
              ::testing::ExitedWithCode(0), "ok");
}

TEST_F(DaemonSeccomp, KvmEndsThawd) {
  // thawd holds no VM when its templates live in workers.
  EXPECT_EXIT(under_thawd_filter([] { ::ioctl(-1, KVM_CREATE_VM, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus),
              "filter 'thawd'\\) made a forbidden system call 16 \\(ioctl\\) request 0xae01");
  EXPECT_EXIT(under_thawd_filter([] { ::syscall(SYS_userfaultfd, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 323 \\(userfaultfd\\)");
}

TEST_F(DaemonSeccomp, ANewProgramOrProcessEndsThawd) {
  EXPECT_EXIT(under_thawd_filter([] { ::syscall(SYS_execve, "/bin/true", nullptr, nullptr); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 59 \\(execve\\)");
  EXPECT_EXIT(under_thawd_filter([] { ::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 56 \\(clone\\)");
}

}  // namespace
}  // namespace thaw::daemon
