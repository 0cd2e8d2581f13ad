#include "rpc/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <optional>

#include "base/unix_socket.h"
#include "base/errors.h"

namespace thaw::rpc {

namespace {

struct Address {
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family() const { return storage.ss_family; }
  const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
};

Address parse(const std::string& address) {
  Address out;
  if (is_unix_path(address)) {
    if (!fill_unix_address(address, *reinterpret_cast<sockaddr_un*>(&out.storage), out.length)) {
      throw InputError("unix socket path " + address + " is " + std::to_string(address.size()) +
                       " bytes long; at most " + std::to_string(kMaxUnixPathBytes));
    }
    return out;
  }
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    throw InputError("address " + address + " is neither a unix socket path nor HOST:PORT");
  }
  std::string host = address.substr(0, colon);
  std::string port_text = address.substr(colon + 1);
  char* end = nullptr;
  unsigned long port = std::strtoul(port_text.c_str(), &end, 10);
  if (*end != '\0' || port > 65535) throw InputError("address " + address + ": bad port " + port_text);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&out.storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&out.storage);
  if (::inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof *v4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    out.length = sizeof *v6;
  } else {
    throw InputError("address " + address + ": host must be a numeric IPv4 or IPv6 address");
  }
  return out;
}

kj::AutoCloseFd make_socket(const Address& a, int flags, const std::string& address) {
  int fd = ::socket(a.family(), SOCK_STREAM | SOCK_CLOEXEC | flags, 0);
  if (fd < 0) throw SysError("socket", errno, address);
  return kj::AutoCloseFd(fd);
}

// Where listen_on binds a unix socket before it is published: beside it as
// ".NAME.PID" (the same file system, so the rename is atomic), or the
// address itself where that name would not fit in a socket address.
std::string unpublished_name(const std::string& address) {
  auto slash = address.rfind('/');
  std::string name = address.substr(0, slash + 1) + "." + address.substr(slash + 1) + "." + std::to_string(::getpid());
  return name.size() <= kMaxUnixPathBytes ? name : address;
}

}  // namespace

bool is_unix_path(const std::string& address) { return address.find('/') != std::string::npos; }

kj::AutoCloseFd listen_on(const std::string& address) {
  Address a = parse(address);
  if (a.family() == AF_UNIX) {
    auto parent = std::filesystem::path(address).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw SysError("mkdir", ec.value(), parent.string());
  }
  std::optional<SocketDirLock> lock;  // over the stale-socket check and the bind
  if (a.family() == AF_UNIX) {
    lock.emplace(address);
    remove_stale_unix_socket(address);
  }
  auto fd = make_socket(a, SOCK_NONBLOCK, address);
  if (a.family() != AF_UNIX) {
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), a.get(), a.length) != 0) throw SysError("bind", errno, address);
    if (::listen(fd.get(), 128) != 0) throw SysError("listen", errno, address);
    return fd;
  }
  // A unix socket is bound under a name of its own, made 0660 and listened
  // on, and only then renamed to `address`: whoever sees the file can
  // connect (a client that waits for the file was refused in between),
  // and a failure leaves no file behind.
  std::string bound_at = unpublished_name(address);
  Address staging = bound_at == address ? a : parse(bound_at);
  if (::bind(fd.get(), staging.get(), staging.length) != 0) throw SysError("bind", errno, bound_at);
  auto fail = [&](const char* operation) {
    int err = errno;
    ::unlink(bound_at.c_str());
    throw SysError(operation, err, bound_at);
  };
  if (::chmod(bound_at.c_str(), 0660) != 0) fail("chmod 0660");
  if (::listen(fd.get(), 128) != 0) fail("listen");
  if (bound_at != address && ::rename(bound_at.c_str(), address.c_str()) != 0) fail("rename to its address");
  return fd;
}

kj::AutoCloseFd connect_to(const std::string& address) {
  Address a = parse(address);
  auto fd = make_socket(a, 0, address);
  if (::connect(fd.get(), a.get(), a.length) != 0) {
    int err = errno;
    std::string hint = (err == ENOENT || err == ECONNREFUSED) ? "; is thawd running?" : "";
    throw SysError("connect", err, "thawd at " + address + hint);
  }
  return fd;
}

}  // namespace thaw::rpc
