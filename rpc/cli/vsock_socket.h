// The host end of a VM's virtio-vsock device as the CLI hands it out: one
// unix socket per VM (`thaw boot|snapshot --vsock PATH`, `thaw restore
// --vsock-dir DIR`). Every check here runs before a VM is made and creates
// nothing, so bad input (exit 2) leaves no file behind.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace thaw::cli {

// Throws InputError unless `path` fits a unix socket address
// (kMaxUnixPathBytes, base/unix_socket.h). `flag` names
// where it came from in the message ("--vsock", "--vsock-dir ...").
void check_vsock_path_length(const std::string& path, const std::string& flag);

// Throws InputError unless a VM's vsock device can listen at `path`: not
// empty, short enough, its directory exists and is writable, and nothing is
// there but, at most, a stale socket (a socket file nobody accepts on, left
// by a VMM that was killed). The device replaces a stale socket; a socket
// something listens on, or any other kind of file, is an error and is left
// alone.
void check_vsock_socket(const std::string& path, const std::string& flag);

// `thaw restore --vsock-dir`: clone i's socket.
std::string clone_vsock_path(const std::string& dir, unsigned index);

// The directories `thaw restore --vsock-dir` made (the missing ones of the
// path, outermost first); removes them again, innermost first and only while
// empty, when destroyed.
class CreatedDirs {
 public:
  CreatedDirs() = default;
  ~CreatedDirs();
  CreatedDirs(const CreatedDirs&) = delete;
  CreatedDirs& operator=(const CreatedDirs&) = delete;

  // Creates `dir` and its missing parents; throws InputError when `dir` is
  // not a directory or cannot be made.
  void create(const std::string& dir, const std::string& flag);

 private:
  std::vector<std::filesystem::path> made_;
};

}  // namespace thaw::cli
