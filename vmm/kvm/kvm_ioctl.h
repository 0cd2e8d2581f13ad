// The one place thaw calls ioctl(2) on KVM fds: retries EINTR where the
// ioctl is not KVM_RUN and turns failures into SysError with the ioctl name.
#pragma once

#include <sys/ioctl.h>

#include <cerrno>
#include <string>

#include "base/errors.h"

namespace thaw::vmm::kvm {

// Issues `request` and returns its non-negative result; throws SysError
// "NAME (context)" on failure.
template <class Arg>
int checked_ioctl(int fd, unsigned long request, Arg arg, const char* name, const std::string& context = {}) {
  int rc;
  do {
    rc = ::ioctl(fd, request, arg);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0) throw_errno(name, context);
  return rc;
}

}  // namespace thaw::vmm::kvm
