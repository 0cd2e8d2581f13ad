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
// the parent directory, then listen_unix with mode 0660 (the file appears
// only once it accepts; a stale socket file is replaced, a live one or any
// other file refused with std::system_error). SysError otherwise.
kj::AutoCloseFd listen_on(const std::string& address);

// A connected, blocking socket. SysError naming the address.
kj::AutoCloseFd connect_to(const std::string& address);

}  // namespace thaw::rpc
