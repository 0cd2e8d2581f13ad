// How listen_unix publishes a socket file: the name clients use appears
// only once something accepts on it (a client that waits for the file must
// not be refused), with the mode asked for, and no staging name is left
// behind, whether it succeeds, refuses, or finds a dead process's staging
// file in its way.
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "base/unix_socket.h"
#include "tests/temp_dir.h"
#include "tests/unix_socket_support.h"

namespace thaw {
namespace {

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) names.insert(entry.path().filename().string());
  return names;
}

mode_t permissions_of(const std::string& at) {
  struct stat st {};
  return ::lstat(at.c_str(), &st) == 0 && S_ISSOCK(st.st_mode) ? st.st_mode & 0777 : 0;
}

// The directory events inotify saw for `name`.
uint32_t events_for(int watch, const std::string& name) {
  std::vector<char> buffer(64 * 1024);
  ssize_t got = ::read(watch, buffer.data(), buffer.size());
  uint32_t mask = 0;
  for (ssize_t off = 0; off > -1 && off < got;) {
    const auto* event = reinterpret_cast<const inotify_event*>(buffer.data() + off);
    if (event->len > 0 && name == event->name) mask |= event->mask;
    off += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
  }
  return mask;
}

TEST(UnixSocketPublish, TheFileAppearsByRenameOnceItAcceptsWithTheModeAskedFor) {
  testing::TempDir dir("thaw-publish");
  const std::string at = dir / "vm.sock";
  int watch = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  ASSERT_GE(watch, 0);
  ASSERT_GE(::inotify_add_watch(watch, dir.path().c_str(), IN_CREATE | IN_MOVED_TO), 0);

  UniqueFd listener = listen_unix(at, 0600);

  // The bind creates its file before listen(); that must not be the name
  // clients use.
  const uint32_t seen = events_for(watch, "vm.sock");
  ::close(watch);
  EXPECT_FALSE(seen & IN_CREATE) << "the socket file appeared before it was listened on";
  EXPECT_TRUE(seen & IN_MOVED_TO) << "the socket file never arrived by rename";
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  EXPECT_EQ(permissions_of(at), 0600u);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"vm.sock"}) << "a staging name was left behind";
}

TEST(UnixSocketPublish, ARefusalLeavesNoStagingName) {
  testing::TempDir dir("thaw-publish");
  const std::string at = dir / "vm.sock";
  UniqueFd first = listen_unix(at);
  try {
    listen_unix(at);
    ADD_FAILURE() << "a second listener on a live socket was allowed";
  } catch (const std::system_error& e) {
    EXPECT_EQ(e.code().value(), EADDRINUSE) << e.what();
  }
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"vm.sock"});
}

// A process that died between its bind and its rename leaves ".NAME.PID";
// after a restart under the same pid (PID 1 in a container) that file must
// not stop the listener.
TEST(UnixSocketPublish, ADeadProcesssStagingFileUnderOurPidIsReplaced) {
  testing::TempDir dir("thaw-publish");
  const std::string at = dir / "vm.sock";
  const std::string staging = dir / (".vm.sock." + std::to_string(::getpid()));
  ASSERT_TRUE(testing::make_stale_unix_socket(staging)) << std::strerror(errno);

  UniqueFd listener = listen_unix(at);
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"vm.sock"});
}

TEST(UnixSocketPublish, APathWithNoRoomForAStagingNameIsBoundInPlace) {
  testing::TempDir dir("thaw-publish");
  // Exactly the longest path a socket address holds: ".NAME.PID" beside it
  // would not fit.
  std::string at = dir.path() + "/";
  ASSERT_LT(at.size(), kMaxUnixPathBytes - 8);
  at += std::string(kMaxUnixPathBytes - at.size(), 's');
  ASSERT_EQ(at.size(), kMaxUnixPathBytes);
  UniqueFd listener = listen_unix(at, 0660);
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  EXPECT_EQ(permissions_of(at), 0660u);
  EXPECT_EQ(names_in(dir.path()).size(), 1u);
}

}  // namespace
}  // namespace thaw
