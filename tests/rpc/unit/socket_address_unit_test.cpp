// rpc/socket_address.h on real sockets: thawd's unix socket file is made
// with mode 0660 in a directory made for it, and a refusal leaves the
// directory as it found it. Addresses that are neither a path nor
// HOST:PORT are refused.
#include "rpc/socket_address.h"

#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <string>
#include <system_error>

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

// How the file is published (by rename, once it accepts) is
// listen_unix's, tested in tests/base/unix_socket_publish_test.cpp; here,
// that thawd's address gets it with mode 0660 and a parent directory.
TEST(ListenOn, AUnixAddressListensWithMode0660InADirectoryItMakes) {
  testing::TempDir dir("thaw-listen-on");
  const std::string at = dir / "run/thaw/thaw.sock";
  auto fd = listen_on(at);
  EXPECT_EQ(probe_unix_socket(at).state, UnixSocketState::kListening);
  struct stat st {};
  ASSERT_EQ(::lstat(at.c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0660u);
  EXPECT_EQ(names_in(dir / "run/thaw"), std::set<std::string>{"thaw.sock"}) << "a staging name was left behind";
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
