#include "rpc/socket_address.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

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

}  // namespace

bool is_unix_path(const std::string& address) { return address.find('/') != std::string::npos; }

kj::AutoCloseFd listen_on(const std::string& address) {
  Address a = parse(address);
  if (a.family() == AF_UNIX) {
    auto parent = std::filesystem::path(address).parent_path();
    std::error_code ec;
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
    if (ec) throw SysError("mkdir", ec.value(), parent.string());
    return kj::AutoCloseFd(listen_unix(address, 0660).release());
  }
  auto fd = make_socket(a, SOCK_NONBLOCK, address);
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), a.get(), a.length) != 0) throw SysError("bind", errno, address);
  if (::listen(fd.get(), 128) != 0) throw SysError("listen", errno, address);
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
