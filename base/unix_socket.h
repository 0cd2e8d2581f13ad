// Unix stream sockets by path: the address, a non-blocking connect, a probe
// of what a path holds, and a listener that never takes over a socket
// someone else still serves. The one place that knows sun_path's limit and
// what counts as a stale socket file, so that two VMs or two processes can
// never steal each other's socket. Failures keep the operation, errno and
// path (std::system_error).
#pragma once

#include <sys/socket.h>
#include <sys/un.h>

#include <sys/types.h>

#include <cstddef>
#include <optional>
#include <string>

#include "base/unique_fd.h"

namespace thaw {

// The longest unix socket path: sun_path less its NUL.
inline constexpr size_t kMaxUnixPathBytes = 107;
static_assert(kMaxUnixPathBytes == sizeof(sockaddr_un::sun_path) - 1);

// Fills `addr` and `length` (family, path and its NUL) for the socket at
// `path`. Returns false, and fills nothing usable, when `path` is empty or
// longer than kMaxUnixPathBytes: the kernel would refuse or truncate it.
bool fill_unix_address(const std::string& path, sockaddr_un& addr, socklen_t& length);

// The same for an abstract socket `name` (no file; on the wire a NUL then
// the name, with no terminator). False when `name` is empty or does not fit.
bool fill_abstract_unix_address(const std::string& name, sockaddr_un& addr, socklen_t& length);

// Non-blocking connect to the unix stream socket at `path`. Returns an
// invalid fd and sets `*error` (errno) when nothing accepts there (ENOENT,
// ECONNREFUSED), the listener's backlog is full (EAGAIN), or the path does
// not fit (ENAMETOOLONG).
UniqueFd connect_unix(const std::string& path, int* error);

enum class UnixSocketState {
  kAbsent,      // nothing at the path
  kStale,       // a socket file nobody accepts on (its owner died)
  kListening,   // something accepts connections there
  kNotASocket,  // a file of another kind
  kUnknown,     // could not tell: see the probe's error
};

struct UnixSocketProbe {
  UnixSocketState state = UnixSocketState::kUnknown;
  int error = 0;  // errno, for kUnknown
};

// Tells what `path` holds by lstat and a connect. A live listener sees the
// probe as a connection that closes at once.
UnixSocketProbe probe_unix_socket(const std::string& path);

// Makes `path` free to bind: nothing when absent, unlinks a stale socket,
// throws std::system_error (EADDRINUSE: in use, EEXIST: not a socket, or the
// probe's errno) for anything else, leaving it alone. Call it, and bind,
// under a SocketDirLock.
void remove_stale_unix_socket(const std::string& path);

// Holds an exclusive flock on the directory of a socket path while a stale
// socket there is replaced and the path bound. Without it, two processes
// that both found the same stale socket could each unlink and bind, and
// the first would be left listening on a socket nobody can reach. Every
// thaw process takes it; no lock file is left behind. Where the directory
// cannot be opened for reading, holds nothing (the bind then decides).
class SocketDirLock {
 public:
  explicit SocketDirLock(const std::string& socket_path);
  bool held() const { return dir_.valid(); }

 private:
  UniqueFd dir_;  // closing it releases the lock
};

// Binds and listens on a non-blocking, close-on-exec unix stream socket at
// `path`, replacing only a stale socket file (remove_stale_unix_socket), all
// under a SocketDirLock. The socket is bound under a staging name beside
// `path` (".NAME.PID"), given `mode` when one is asked for, listened on, and
// only then renamed to `path`: whoever sees the file can connect, and a
// failure leaves no file behind. Where the staging name would not fit in a
// socket address, it is bound at `path` itself. Throws std::system_error
// naming the path.
UniqueFd listen_unix(const std::string& path, std::optional<mode_t> mode = std::nullopt);

}  // namespace thaw
