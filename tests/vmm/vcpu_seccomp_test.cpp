// The vCPU thread's allow-list, applied to a plain thread in a child
// process: what the exit path needs runs, and what an escaped guest would
// want next (files, sockets, processes, executable memory) ends the process.
#include "vmm/vcpu_seccomp.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace thaw::vmm {
namespace {

class VcpuSeccompTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

// Applies the vCPU filter the way a vCPU thread does, then runs `body`.
template <class Body>
void under_vcpu_filter(Body body) {
  prepare_thread_for_vcpu_filter();
  vcpu_thread_filter().apply_to_this_thread();
  body();
  ::syscall(SYS_exit_group, 0);
}

TEST_F(VcpuSeccompTest, TheExitPathsCallsRun) {
  EXPECT_EXIT(under_vcpu_filter([] {
                // Console bytes, a lock, memory for a message, the clock.
                [[maybe_unused]] auto n = ::write(STDERR_FILENO, "ok\n", 3);
                std::string grown(1 << 20, 'x');  // malloc: mmap/brk without PROT_EXEC
                void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                if (page == MAP_FAILED || grown.size() != (1u << 20)) ::syscall(SYS_exit_group, 1);
                ::munmap(page, 4096);
                timespec now{};
                ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &now);
              }),
              ::testing::ExitedWithCode(0), "ok");
}

// A device's first log line may be a stream's first output: glibc then
// asks fstat how big the stream's buffer should be.
TEST_F(VcpuSeccompTest, AStreamsFirstOutputRuns) {
  EXPECT_EXIT(
      {
        std::FILE* fresh = ::fdopen(::dup(STDERR_FILENO), "w");
        under_vcpu_filter([fresh] {
          std::fputs("first line\n", fresh);
          std::fflush(fresh);
        });
      },
      ::testing::ExitedWithCode(0), "first line");
}

TEST_F(VcpuSeccompTest, OpeningAFileEndsTheProcess) {
  EXPECT_EXIT(under_vcpu_filter([] { ::open("/etc/passwd", O_RDONLY); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "filter 'vcpu'\\) made a forbidden system call 257 \\(openat\\)");
}

TEST_F(VcpuSeccompTest, ASocketEndsTheProcess) {
  EXPECT_EXIT(under_vcpu_filter([] { ::socket(AF_INET, SOCK_STREAM, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 41 \\(socket\\)");
}

TEST_F(VcpuSeccompTest, ExecutableMemoryEndsTheProcess) {
  EXPECT_EXIT(under_vcpu_filter([] {
                ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
              }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 9 \\(mmap\\)");
}

TEST_F(VcpuSeccompTest, StartingAProcessEndsTheProcess) {
  EXPECT_EXIT(under_vcpu_filter([] { ::syscall(SYS_execve, "/bin/true", nullptr, nullptr); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 59 \\(execve\\)");
}

TEST_F(VcpuSeccompTest, AnIoctlOtherThanTheRunLoopsEndsTheProcess) {
  // KVM_CREATE_VCPU on any fd: a thread that may make vCPUs could make more VMs' worth.
  EXPECT_EXIT(under_vcpu_filter([] { ::syscall(SYS_ioctl, 0, 0xae41ul, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 16 \\(ioctl\\)");
}

TEST_F(VcpuSeccompTest, TheFilterIsCompiledOnceAndShared) {
  EXPECT_EQ(&vcpu_thread_filter(), &vcpu_thread_filter());
  EXPECT_EQ(vcpu_thread_filter().rule_count(), vcpu_thread_rules().size());
}

}  // namespace
}  // namespace thaw::vmm
