// Between pool errors and kj exception types, on both sides of the wire.
//   server: pool::BadArgument, NotFound -> FAILED; Overloaded -> OVERLOADED;
//           GuestGone -> DISCONNECTED; InputError -> FAILED; SysError -> FAILED
//           "host error: ..."; anything else -> FAILED "internal error: ..."
//   client: the kind of a kj exception and its message without kj's
//           "remote exception: " prefix.
#pragma once

#include <exception>
#include <string>
#include <string_view>

#include <kj/exception.h>

namespace thaw::rpc {

// A FAILED exception carrying `message` as is: how the server rejects a bad
// argument. The message should name the argument.
[[noreturn]] void throw_bad_argument(const std::string& message);

// Maps a pool (or any) exception to the kj exception the client receives.
kj::Exception exception_to_kj(std::exception_ptr error);

// How a FAILED message from the host's side starts (kj 0.9 has no typed
// details): the client tells a host failure from a bad argument by it.
inline constexpr std::string_view kHostErrorPrefix = "host error: ";
inline constexpr std::string_view kInternalErrorPrefix = "internal error: ";

enum class ErrorKind {
  kFailed,        // a bad argument, an unknown template or lease
  kHostError,     // the host refused (no /dev/kvm, ...) or thawd failed inside
  kOverloaded,    // no warm clone within the timeout
  kDisconnected,  // the guest is gone, or the connection to thawd is
  kOther,
};

ErrorKind error_kind(const kj::Exception& e);
// The server's message, without the "remote exception: " prefix.
std::string error_message(const kj::Exception& e);

}  // namespace thaw::rpc
