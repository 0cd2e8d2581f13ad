// base/unix_socket.h on real sockets in a fresh directory: the address
// limits, what the probe tells apart, and that listen_unix replaces only a
// stale socket.
#include "base/unix_socket.h"

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "tests/temp_dir.h"
#include "tests/unix_socket_support.h"

namespace thaw {
namespace {

class UnixSocketTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }

  // A socket file nobody accepts on, as a killed process leaves it.
  static void make_stale(const std::string& at) {
    ASSERT_TRUE(testing::make_stale_unix_socket(at)) << std::strerror(errno);
  }

  static std::string read_text(const std::string& at) {
    std::ifstream in(at);
    return {std::istreambuf_iterator<char>(in), {}};
  }

  // A message from `fn`'s std::system_error, with its errno in `*error`.
  template <typename Fn>
  static std::string system_error_of(Fn fn, int* error) {
    try {
      fn();
    } catch (const std::system_error& e) {
      *error = e.code().value();
      return e.what();
    }
    *error = 0;
    return "no error";
  }

  testing::TempDir dir_{"thaw-unix-socket"};
};

TEST_F(UnixSocketTest, AddressTakesAtMost107Bytes) {
  sockaddr_un addr;
  socklen_t length = 1;
  EXPECT_FALSE(fill_unix_address("", addr, length));
  EXPECT_FALSE(fill_unix_address("/" + std::string(107, 'x'), addr, length));  // 108 bytes

  const std::string longest = "/" + std::string(106, 'x');
  ASSERT_EQ(longest.size(), kMaxUnixPathBytes);
  ASSERT_TRUE(fill_unix_address(longest, addr, length));
  EXPECT_EQ(addr.sun_family, AF_UNIX);
  EXPECT_EQ(std::string(addr.sun_path), longest);
  EXPECT_EQ(length, offsetof(sockaddr_un, sun_path) + longest.size() + 1);
}

TEST_F(UnixSocketTest, ProbeTellsTheKindsOfPathApart) {
  EXPECT_EQ(probe_unix_socket(path("absent.sock")).state, UnixSocketState::kAbsent);

  make_stale(path("stale.sock"));
  EXPECT_EQ(probe_unix_socket(path("stale.sock")).state, UnixSocketState::kStale);

  UniqueFd live = listen_unix(path("live.sock"));
  EXPECT_EQ(probe_unix_socket(path("live.sock")).state, UnixSocketState::kListening);

  std::ofstream(path("file")) << "data";
  EXPECT_EQ(probe_unix_socket(path("file")).state, UnixSocketState::kNotASocket);

  auto below_file = probe_unix_socket(path("file/x.sock"));
  EXPECT_EQ(below_file.state, UnixSocketState::kUnknown);
  EXPECT_EQ(below_file.error, ENOTDIR);
}

TEST_F(UnixSocketTest, ConnectReportsErrno) {
  int error = 0;
  EXPECT_FALSE(connect_unix(path("absent.sock"), &error));
  EXPECT_EQ(error, ENOENT);

  make_stale(path("stale.sock"));
  EXPECT_FALSE(connect_unix(path("stale.sock"), &error));
  EXPECT_EQ(error, ECONNREFUSED);

  EXPECT_FALSE(connect_unix("/" + std::string(107, 'x'), &error));
  EXPECT_EQ(error, ENAMETOOLONG);

  UniqueFd listener = listen_unix(path("live.sock"));
  error = 0;
  EXPECT_TRUE(connect_unix(path("live.sock"), &error));
  EXPECT_EQ(error, 0);
}

TEST_F(UnixSocketTest, ListenReplacesAStaleSocket) {
  const std::string at = path("vm.sock");
  make_stale(at);
  ASSERT_EQ(probe_unix_socket(at).state, UnixSocketState::kStale);

  UniqueFd listener = listen_unix(at);
  int error = 0;
  UniqueFd client = connect_unix(at, &error);
  ASSERT_TRUE(client) << std::strerror(error);
  EXPECT_TRUE(UniqueFd(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC)));
}

TEST_F(UnixSocketTest, ListenRefusesALiveSocketAndLeavesItServing) {
  const std::string at = path("vm.sock");
  UniqueFd first = listen_unix(at);
  const ino_t before = testing::inode_of(at);

  int error = 0;
  std::string message = system_error_of([&] { listen_unix(at); }, &error);
  EXPECT_EQ(error, EADDRINUSE) << message;
  EXPECT_NE(message.find(at), std::string::npos) << message;
  EXPECT_NE(message.find("in use"), std::string::npos) << message;
  EXPECT_THROW(remove_stale_unix_socket(at), std::system_error);

  // The same socket file, and the first listener still accepts on it.
  EXPECT_EQ(testing::inode_of(at), before);
  UniqueFd client = connect_unix(at, &error);
  ASSERT_TRUE(client) << std::strerror(error);
  ASSERT_EQ(::send(client.get(), "x", 1, MSG_NOSIGNAL), 1);
  // The probes' connections sit in the backlog first; ours is the last.
  char byte = 0;
  for (int i = 0; i < 8 && byte != 'x'; ++i) {
    UniqueFd accepted(::accept4(first.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_TRUE(accepted) << std::strerror(errno);
    if (::recv(accepted.get(), &byte, 1, MSG_DONTWAIT) != 1) byte = 0;
  }
  EXPECT_EQ(byte, 'x');
}

// Two listeners for one stale path take turns: the second waits while the
// first holds the directory lock, then finds the first's live socket and
// refuses, instead of unlinking it.
TEST_F(UnixSocketTest, ReplacingAStaleSocketWaitsForTheDirectoryLock) {
  const std::string at = path("vm.sock");
  make_stale(at);
  std::optional<SocketDirLock> held(std::in_place, at);
  ASSERT_TRUE(held->held()) << "flock on " << dir_.path() << " failed";

  std::atomic<bool> done{false};
  int error = 0;
  std::string message;
  std::thread second([&] {
    message = system_error_of([&] { listen_unix(at); }, &error);
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(done) << "listen_unix went ahead while the directory was locked";
  // The lock holder replaces the stale socket meanwhile, as listen_unix
  // does under the lock...
  ASSERT_EQ(::unlink(at.c_str()), 0);
  sockaddr_un addr;
  socklen_t length;
  ASSERT_TRUE(fill_unix_address(at, addr, length));
  UniqueFd first(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(::bind(first.get(), reinterpret_cast<const sockaddr*>(&addr), length), 0) << std::strerror(errno);
  ASSERT_EQ(::listen(first.get(), 8), 0);
  held.reset();
  second.join();
  // ...and the second finds it live.
  EXPECT_EQ(error, EADDRINUSE) << message;
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
}

TEST_F(UnixSocketTest, ListenLeavesARegularFileAlone) {
  const std::string at = path("precious");
  std::ofstream(at) << "precious";

  int error = 0;
  std::string message = system_error_of([&] { listen_unix(at); }, &error);
  EXPECT_EQ(error, EEXIST) << message;
  EXPECT_NE(message.find(at), std::string::npos) << message;
  EXPECT_NE(message.find("not a socket"), std::string::npos) << message;
  EXPECT_EQ(read_text(at), "precious");
}

TEST_F(UnixSocketTest, ListenRejectsPathsThatDoNotFit) {
  int error = 0;
  system_error_of([] { listen_unix(""); }, &error);
  EXPECT_EQ(error, EINVAL);
  const std::string too_long = path(std::string(kMaxUnixPathBytes, 'x'));
  system_error_of([&] { listen_unix(too_long); }, &error);
  EXPECT_EQ(error, ENAMETOOLONG);
  EXPECT_FALSE(std::filesystem::exists(too_long));
}

}  // namespace
}  // namespace thaw
