// ServiceNotifier against real datagram sockets, as systemd would listen:
// a path and an abstract name; unset means silent; what cannot be sent is
// an error naming the socket.
#include "base/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include <gtest/gtest.h>

#include "base/unique_fd.h"
#include "base/unix_socket.h"
#include "tests/temp_dir.h"

namespace thaw {
namespace {

// A bound datagram socket; `name` starting with '@' is abstract.
UniqueFd bind_datagram(const std::string& name) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr;
  socklen_t length;
  const bool fits = name[0] == '@' ? fill_abstract_unix_address(name.substr(1), addr, length)
                                   : fill_unix_address(name, addr, length);
  if (!fits || ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), length) != 0) return UniqueFd();
  return fd;
}

std::string receive(const UniqueFd& fd) {
  char buf[512];
  ssize_t n = ::recv(fd.get(), buf, sizeof buf, MSG_DONTWAIT);
  return n < 0 ? "(nothing)" : std::string(buf, static_cast<size_t>(n));
}

TEST(ServiceNotifier, SendsOneDatagramToAPathSocket) {
  testing::TempDir dir;
  const std::string path = dir / "notify";
  auto listener = bind_datagram(path);
  ASSERT_TRUE(listener.valid());
  ServiceNotifier notifier(path);
  EXPECT_TRUE(notifier.active());
  notifier.notify("READY=1\nSTATUS=2 pools warm");
  EXPECT_EQ(receive(listener), "READY=1\nSTATUS=2 pools warm");
  notifier.notify("STOPPING=1");
  EXPECT_EQ(receive(listener), "STOPPING=1");
}

TEST(ServiceNotifier, SendsToAnAbstractSocket) {
  const std::string name = "@thaw-notify-test-" + std::to_string(::getpid());
  auto listener = bind_datagram(name);
  ASSERT_TRUE(listener.valid());
  ServiceNotifier(name).notify("READY=1");
  EXPECT_EQ(receive(listener), "READY=1");
}

TEST(ServiceNotifier, FromTheEnvironmentAndSilentWithoutIt) {
  testing::TempDir dir;
  const std::string path = dir / "notify";
  auto listener = bind_datagram(path);
  ASSERT_TRUE(listener.valid());
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
  auto notifier = ServiceNotifier::from_environment();
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(notifier.socket_path(), path);
  notifier.notify("READY=1");
  EXPECT_EQ(receive(listener), "READY=1");

  auto silent = ServiceNotifier::from_environment();
  EXPECT_FALSE(silent.active());
  EXPECT_NO_THROW(silent.notify("READY=1"));
}

TEST(ServiceNotifier, WhatCannotBeSentNamesTheSocket) {
  testing::TempDir dir;
  try {
    ServiceNotifier(dir / "nobody-listens").notify("READY=1");
    ADD_FAILURE() << "a socket nobody bound must fail the send";
  } catch (const std::system_error& e) {
    EXPECT_NE(std::string(e.what()).find("nobody-listens"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ServiceNotifier("/" + std::string(200, 'x')).notify("READY=1"), std::system_error);
  EXPECT_THROW(ServiceNotifier("@" + std::string(200, 'x')).notify("READY=1"), std::system_error);
}

}  // namespace
}  // namespace thaw
