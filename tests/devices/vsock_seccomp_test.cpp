// The vsock muxer thread's allow-list: applied to a plain thread in a child
// process, what the muxer does (its epoll set, eventfds, unix stream
// sockets, malloc, clocks) runs, and what an escaped guest would want next
// (files, other sockets, processes, executable memory, KVM's ioctls) ends
// the process naming the call. And a real device puts its muxer thread
// under the filter before it serves anything.
#include "devices/virtio/vsock_seccomp.h"

#include <gtest/gtest.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <cstring>
#include <thread>
#include <vector>
#include <fstream>
#include <string>

#include "base/errors.h"
#include "devices/virtio/vsock_device.h"
#include "devices/virtio/vsock_muxer.h"
#include "tests/temp_dir.h"

namespace thaw::devices {
namespace {

class VsockSeccompTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

template <class Body>
void under_muxer_filter(Body body) {
  vsock_muxer_filter().apply_to_this_thread();
  body();
  ::syscall(SYS_exit_group, 0);
}

TEST_F(VsockSeccompTest, TheMuxersCallsRun) {
  EXPECT_EXIT(
      {
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) ::_exit(2);
        const int events = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
        under_muxer_filter([&] {
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.fd = events;
          if (::epoll_ctl(epoll, EPOLL_CTL_ADD, events, &ev) != 0) ::syscall(SYS_exit_group, 3);
          uint64_t one = 1;
          if (::write(events, &one, sizeof one) != sizeof one) ::syscall(SYS_exit_group, 4);
          if (::epoll_wait(epoll, &ev, 1, 1000) != 1 || ::read(events, &one, sizeof one) != sizeof one) {
            ::syscall(SYS_exit_group, 5);
          }
          // Bytes both ways on a stream, then a half-close.
          char buf[8];
          if (::send(pair[0], "hi", 2, MSG_NOSIGNAL | MSG_DONTWAIT) != 2) ::syscall(SYS_exit_group, 6);
          if (::recv(pair[1], buf, sizeof buf, MSG_DONTWAIT) != 2) ::syscall(SYS_exit_group, 7);
          ::shutdown(pair[0], SHUT_WR);
          // A guest's connection to a host port: a unix socket and a connect
          // (to nothing here: the call runs and fails).
          const int s = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
          sockaddr_un addr{};
          addr.sun_family = AF_UNIX;
          std::strcpy(addr.sun_path, "/nonexistent/thaw-vsock_5000");
          if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) ::syscall(SYS_exit_group, 8);
          ::close(s);
          std::string grown(1 << 20, 'x');  // malloc
          [[maybe_unused]] auto n = ::write(STDERR_FILENO, "ok\n", 3);
        });
      },
      ::testing::ExitedWithCode(0), "ok");
}

TEST_F(VsockSeccompTest, OpeningAFileEndsTheProcess) {
  EXPECT_EXIT(under_muxer_filter([] { ::open("/etc/passwd", O_RDONLY); }),
              ::testing::ExitedWithCode(kSeccompExitStatus),
              "filter 'vsock'\\) made a forbidden system call 257 \\(openat\\)");
}

TEST_F(VsockSeccompTest, ASocketOtherThanUnixEndsTheProcess) {
  EXPECT_EXIT(under_muxer_filter([] { ::socket(AF_INET, SOCK_STREAM, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 41 \\(socket\\)");
}

TEST_F(VsockSeccompTest, StartingAProcessEndsTheProcess) {
  EXPECT_EXIT(under_muxer_filter([] { ::syscall(SYS_execve, "/bin/true", nullptr, nullptr); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 59 \\(execve\\)");
}

TEST_F(VsockSeccompTest, ExecutableMemoryEndsTheProcess) {
  EXPECT_EXIT(under_muxer_filter([] {
                ::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
              }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 9 \\(mmap\\)");
}

TEST_F(VsockSeccompTest, AnyIoctlEndsTheProcess) {
  // KVM_CREATE_VM: the muxer has no business with KVM at all.
  EXPECT_EXIT(under_muxer_filter([] { ::syscall(SYS_ioctl, 0, 0xae01ul, 0); }),
              ::testing::ExitedWithCode(kSeccompExitStatus), "forbidden system call 16 \\(ioctl\\)");
}

// glibc's malloc reads /sys/devices/system/cpu/online when the process
// first needs a ninth arena. Here 24 threads apply the filter and only then
// allocate for the first time, one after another (at once, they could all
// pass the arena count check before any of them raised it), so the ninth
// new arena is made on a filtered thread: the SIGSYS reporter must not fire.
void allocate_on_fresh_filtered_threads() {
  constexpr int kThreads = 24;
  std::atomic<int> turn{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&turn, i] {
      vsock_muxer_filter().apply_to_this_thread();
      while (turn.load() != i) ::syscall(SYS_sched_yield);
      std::string first(4000, 'x');  // this thread's first malloc: a new arena
      if (first.size() != 4000) ::syscall(SYS_exit_group, 2);
      turn.fetch_add(1);
      // Alive until every thread has allocated: no arena is freed for reuse.
      while (turn.load() < kThreads) ::syscall(SYS_sched_yield);
    });
  }
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "allocated\n");
  ::_exit(0);
}

TEST_F(VsockSeccompTest, NewMallocArenasOnFilteredThreadsOpenNoFile) {
  EXPECT_EXIT(allocate_on_fresh_filtered_threads(), ::testing::ExitedWithCode(0), "allocated");
}

// How many of this process's threads run under a seccomp filter.
int filtered_threads() {
  int count = 0;
  DIR* tasks = ::opendir("/proc/self/task");
  if (tasks == nullptr) return -1;
  while (dirent* e = ::readdir(tasks)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream status(std::string("/proc/self/task/") + e->d_name + "/status");
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Seccomp:", 0) == 0 && line.find('2') != std::string::npos) ++count;
    }
  }
  ::closedir(tasks);
  return count;
}

// Counts filtered threads with and without a device that has the filter,
// then exits 0 when the device's muxer was the one.
void count_filtered_muxers() {
  testing::TempDir dir("vsock-seccomp");
  const int before = filtered_threads();
  int with_filter = -1;
  int without = -1;
  {
    VsockDevice filtered(dir.path() + "/filtered.sock", kVsockDefaultGuestCid, &vsock_muxer_filter());
    // The muxer applies it as it starts, without the constructor waiting.
    for (int i = 0; i < 2000 && (with_filter = filtered_threads()) == 0; ++i) ::usleep(1000);
  }
  // A joined thread can stay listed in /proc/self/task for a moment after
  // the join (long enough to see under emulation): wait until it is gone.
  for (int i = 0; i < 5000 && filtered_threads() > 0; ++i) ::usleep(1000);
  {
    VsockDevice plain(dir.path() + "/plain.sock");
    without = filtered_threads();
  }
  std::fprintf(stderr, "before %d with %d without %d\n", before, with_filter, without);
  ::_exit(before == 0 && with_filter == 1 && without == 0 ? 0 : 1);
}

TEST_F(VsockSeccompTest, ADeviceGivenTheFilterRunsItsMuxerUnderIt) {
  // In a child: a filtered thread must not leak into other tests' counts.
  EXPECT_EXIT(count_filtered_muxers(), ::testing::ExitedWithCode(0), "before 0 with 1 without 0");
}

// A pool's shared muxer: start() returns only once its thread runs under
// the filter, so the filtered count is one more at once, with no polling.
void count_a_waited_muxer() {
  const int before = filtered_threads();
  auto muxer = VsockMuxer::start(&vsock_muxer_filter(), VsockMuxer::FilterCheck::kWait);
  const int after = filtered_threads();
  std::fprintf(stderr, "before %d after %d\n", before, after);
  ::_exit(before == 0 && after == 1 ? 0 : 1);
}

TEST_F(VsockSeccompTest, AWaitedMuxerIsUnderItsFilterWhenStartReturns) {
  EXPECT_EXIT(count_a_waited_muxer(), ::testing::ExitedWithCode(0), "before 0 after 1");
}

// Under a filter that answers seccomp(2) with EPERM (as a container
// runtime's may), the muxer's own filter is refused: a waited start throws
// the kernel's errno, naming the filter, instead of serving unfiltered.
void start_a_muxer_where_seccomp_is_refused() {
  sock_filter refuse_seccomp[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_seccomp, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog program{static_cast<unsigned short>(std::size(refuse_seccomp)), refuse_seccomp};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) {
    ::_exit(2);
  }
  try {
    auto muxer = VsockMuxer::start(&vsock_muxer_filter(), VsockMuxer::FilterCheck::kWait);
  } catch (const SysError& e) {
    std::fprintf(stderr, "refused: %s\n", e.what());
    ::_exit(e.error_number() == EPERM ? 0 : 1);
  }
  ::_exit(1);
}

TEST_F(VsockSeccompTest, AWaitedMuxerWhoseFilterIsRefusedThrowsTheKernelsError) {
  EXPECT_EXIT(start_a_muxer_where_seccomp_is_refused(), ::testing::ExitedWithCode(0), "refused: .*filter 'vsock'");
}

TEST_F(VsockSeccompTest, TheFilterIsCompiledOnceAndShared) {
  EXPECT_EQ(&vsock_muxer_filter(), &vsock_muxer_filter());
  EXPECT_EQ(vsock_muxer_filter().rule_count(), vsock_muxer_rules().size());
}

}  // namespace
}  // namespace thaw::devices
