// rpc/socket_address.h on real sockets: thawd's unix socket file appears
// only once something accepts on it (a client that waits for the file must
// not be refused), with mode 0660, and refusals leave the directory as
// they found it. Addresses that are neither a path nor HOST:PORT are refused.
#include "rpc/socket_address.h"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include <gtest/gtest.h>

#include "base/errors.h"
#include "base/unix_socket.h"
#include "tests/temp_dir.h"

namespace thaw::rpc {
namespace {

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

TEST(ListenOn, UnixSocketFileIsPublishedOnlyOnceItAccepts) {
  testing::TempDir dir("thaw-listen-on");
  const std::string at = dir / "thaw.sock";
  int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(::inotify_add_watch(watch, dir.path().c_str(), IN_CREATE | IN_MOVED_TO), 0);

  auto fd = listen_on(at);

  // The name the clients use must come by a rename (made after listen()),
  // never by the bind itself, which creates the file before it accepts.
  std::vector<char> buffer(64 * 1024);
  ssize_t got = ::read(watch, buffer.data(), buffer.size());
  ::close(watch);
  ASSERT_GT(got, 0) << "no directory events at all";
  bool created_as_published = false;
  bool renamed_into_place = false;
  for (ssize_t off = 0; off < got;) {
    const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + off);
    if (event->len > 0 && std::string(event->name) == "thaw.sock") {
      if (event->mask & IN_CREATE) created_as_published = true;
      if (event->mask & IN_MOVED_TO) renamed_into_place = true;
    }
    off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
  }
  EXPECT_FALSE(created_as_published) << "the socket file appeared before it was listened on";
  EXPECT_TRUE(renamed_into_place);

  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  struct stat st {};
  ASSERT_EQ(::lstat(at.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"thaw.sock"}) << "a staging name was left behind";
  auto client = connect_to(at);
  EXPECT_GE(client.get(), 0);
}

TEST(ListenOn, AnAddressInUseIsRefusedAndTheDirectoryIsLeftAsItWas) {
  testing::TempDir dir("thaw-listen-on");
  const std::string at = dir / "thaw.sock";
  auto first = listen_on(at);
  struct stat before {};
  ASSERT_EQ(::lstat(at.c_str(), &before), 0);
  try {
    listen_on(at);
    ADD_FAILURE() << "a second listener on a live socket was allowed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }
  struct stat after {};
  ASSERT_EQ(::lstat(at.c_str(), &after), 0);
  EXPECT_EQ(after.st_ino, before.st_ino) << "the live socket was replaced";
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"thaw.sock"});
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
}

TEST(ListenOn, APathWithNoRoomForAStagingNameIsBoundInPlace) {
  testing::TempDir dir("thaw-listen-on");
  // Exactly the longest path a socket address holds: ".NAME.PID" beside it
  // would not fit, so the socket is bound at the address itself.
  std::string at = dir.path() + "/";
  ASSERT_LT(at.size(), kMaxUnixPathBytes - 8);
  at += std::string(kMaxUnixPathBytes - at.size(), 's');
  ASSERT_EQ(at.size(), kMaxUnixPathBytes);
  auto fd = listen_on(at);
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  EXPECT_EQ(names_in(dir.path()).size(), 1u);
}

TEST(ListenOn, AddressesThatAreNeitherAPathNorHostPortAreRefused) {
  for (const std::string bad : {"localhost", "127.0.0.1:", "127.0.0.1:70000", "example.com:80", "::1:x"}) {
    try {
      listen_on(bad);
      ADD_FAILURE() << "accepted " << bad;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace thaw::rpc
