// thawd's addresses: a unix socket path ("/run/thaw/thaw.sock") or a numeric
// TCP address ("127.0.0.1:7777", "[::1]:7777"). Sockets are made here with
// plain syscalls and then wrapped by kj, so neither side ever needs a name
// lookup (the `thaw` CLI is static and must not call getaddrinfo).
#pragma once

#include <string>

#include <kj/io.h>

namespace thaw::rpc {

// True for a unix socket path: anything with a '/' in it.
bool is_unix_path(const std::string& address);

// A listening socket (SOCK_CLOEXEC | SOCK_NONBLOCK). For a unix path: makes
// the parent directory, replaces a stale socket file and refuses one that a
// live server still answers on, or any other file (std::system_error, see
// base/unix_socket.h); the socket file gets mode 0660. SysError otherwise.
kj::AutoCloseFd listen_on(const std::string& address);

// A connected, blocking socket. SysError naming the address.
kj::AutoCloseFd connect_to(const std::string& address);

}  // namespace thaw::rpc
