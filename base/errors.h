// The error types every layer throws, so that a message keeps the failed
// operation, errno and context all the way up to what the user reads:
//   SysError   - a system call or ioctl the host refused;
//   InputError - bad input from the user or a file (a size, a path, an image);
//   StateError - saved or guest-written state that cannot be applied (a
//                snapshot's device registers, a virtqueue in guest memory).
#pragma once

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace thaw {

// A failed system call or ioctl: "KVM_CREATE_VM (opening VM on /dev/kvm): Device or resource busy (errno 16)".
class SysError : public std::runtime_error {
 public:
  SysError(std::string operation, int error_number, std::string context = {})
      : std::runtime_error(format(operation, error_number, context)),
        operation_(std::move(operation)),
        errno_(error_number),
        context_(std::move(context)) {}

  const std::string& operation() const { return operation_; }
  int error_number() const { return errno_; }
  const std::string& context() const { return context_; }

 private:
  static std::string format(const std::string& op, int err, const std::string& ctx) {
    std::string msg = op;
    if (!ctx.empty()) msg += " (" + ctx + ")";
    msg += ": ";
    msg += std::strerror(err);
    msg += " (errno " + std::to_string(err) + ")";
    return msg;
  }

  std::string operation_;
  int errno_;
  std::string context_;
};

// Bad input from the user or from a file: a kernel image, a size, a count.
// The message names what was wrong.
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Saved or guest-provided machine state that is inconsistent. It is input
// too (a snapshot file is untrusted), so callers that only tell "the
// caller's fault" from "the host's fault" can catch InputError.
class StateError : public InputError {
 public:
  using InputError::InputError;
};

// Throws SysError built from the current errno.
[[noreturn]] inline void throw_errno(std::string operation, std::string context = {}) {
  throw SysError(std::move(operation), errno, std::move(context));
}

}  // namespace thaw
