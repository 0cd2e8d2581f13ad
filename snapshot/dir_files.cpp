#include "snapshot/dir_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "base/fd_io.h"
#include "base/errors.h"

namespace thaw::snapshot {

std::string join(const std::string& dir, const char* name) { return dir + "/" + name; }

UniqueFd open_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd) return fd;
  if (errno == ENOENT) throw InputError("snapshot directory " + dir + " does not exist");
  if (errno == ENOTDIR) throw InputError("snapshot directory " + dir + " is not a directory");
  throw_errno("open", "snapshot directory " + dir);
}

void fsync_dir(int dir_fd, const std::string& dir) {
  if (::fsync(dir_fd) != 0) throw_errno("fsync", "snapshot directory " + dir);
}

void unlink_if_present(int dir_fd, const std::string& dir, const char* name) {
  if (::unlinkat(dir_fd, name, 0) != 0 && errno != ENOENT) throw_errno("unlink", join(dir, name));
}

void write_file(int dir_fd, const std::string& dir, const char* name, std::span<const uint8_t> bytes) {
  UniqueFd fd(::openat(dir_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!fd) throw_errno("open", join(dir, name));
  if (auto written = write_all(fd.get(), bytes); written.error != 0) {
    throw SysError("write", written.error, join(dir, name));
  }
  if (::fsync(fd.get()) != 0) throw_errno("fsync", join(dir, name));
}

void rename_in(int dir_fd, const std::string& dir, const char* from, const char* to) {
  if (::renameat(dir_fd, from, dir_fd, to) != 0) throw_errno("rename", join(dir, from) + " to " + to);
}

}  // namespace thaw::snapshot
