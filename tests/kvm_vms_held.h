// How many KVM VMs a process holds open: its fds that are "anon_inode:kvm-vm"
// (a clone's VM and a prepared VM shell alike). For tests that check a pool
// keeps no more VMs than its policy allows.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace thaw::testing {

// `pid` 0: this process.
inline size_t kvm_vms_held(pid_t pid = 0) {
  const std::string fds = pid == 0 ? "/proc/self/fd" : "/proc/" + std::to_string(pid) + "/fd";
  size_t n = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(fds, ec)) {
    std::error_code link_ec;
    if (std::filesystem::read_symlink(entry.path(), link_ec).string() == "anon_inode:kvm-vm") ++n;
  }
  return n;
}

}  // namespace thaw::testing
