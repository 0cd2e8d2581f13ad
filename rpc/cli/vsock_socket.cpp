#include "rpc/cli/vsock_socket.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/unix_socket.h"
#include "base/errors.h"

namespace thaw::cli {

namespace {

std::string errno_text(int error) { return std::strerror(error); }

}  // namespace

void check_vsock_path_length(const std::string& path, const std::string& flag) {
  if (path.empty()) throw InputError(flag + " is empty; give the path of the VM's vsock unix socket");
  if (path.size() > kMaxUnixPathBytes) {
    throw InputError(flag + " " + path + ": the socket path is " + std::to_string(path.size()) +
                     " bytes; a unix socket path holds at most " + std::to_string(kMaxUnixPathBytes));
  }
}

void check_vsock_socket(const std::string& path, const std::string& flag) {
  check_vsock_path_length(path, flag);
  auto parent = std::filesystem::path(path).parent_path();
  if (parent.empty()) parent = ".";
  struct stat st{};
  if (::stat(parent.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw InputError(flag + " " + path + ": directory " + parent.string() + " does not exist");
  }
  if (::access(parent.c_str(), W_OK | X_OK) != 0) {
    throw InputError(flag + " " + path + ": cannot create a socket in " + parent.string() + ": " +
                     errno_text(errno));
  }
  auto probe = probe_unix_socket(path);
  switch (probe.state) {
    case UnixSocketState::kAbsent:
    case UnixSocketState::kStale:  // the device's listen replaces it
      return;
    case UnixSocketState::kNotASocket:
      throw InputError(flag + " " + path + " exists and is not a socket; thaw replaces only a stale socket");
    case UnixSocketState::kListening:
      throw InputError(flag + " " + path + " is in use: something (another VM?) accepts connections on it");
    case UnixSocketState::kUnknown:
      break;
  }
  throw InputError(flag + " " + path + ": cannot tell whether the socket there is in use: " + errno_text(probe.error));
}

std::string clone_vsock_path(const std::string& dir, unsigned index) {
  std::string path = dir;
  if (path.empty() || path.back() != '/') path += '/';
  return path + "clone-" + std::to_string(index) + ".sock";
}

CreatedDirs::~CreatedDirs() {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) ::rmdir(it->c_str());
}

void CreatedDirs::create(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  std::filesystem::path path(dir);
  auto status = std::filesystem::status(path, ec);
  if (std::filesystem::exists(status)) {
    if (!std::filesystem::is_directory(status)) throw InputError(flag + " " + dir + " exists and is not a directory");
    return;
  }
  // The missing directories, outermost first.
  std::vector<std::filesystem::path> missing;
  for (auto p = path.lexically_normal(); !p.empty() && !std::filesystem::exists(p, ec);) {
    if (p.filename().empty()) {  // "a/b/": the trailing separator
      p = p.parent_path();
      continue;
    }
    missing.insert(missing.begin(), p);
    auto up = p.parent_path();
    if (up == p) break;
    p = up;
  }
  for (const auto& p : missing) {
    if (::mkdir(p.c_str(), 0755) == 0) {
      made_.push_back(p);
    } else if (errno != EEXIST) {
      throw InputError(flag + " " + dir + ": cannot create directory " + p.string() + ": " + errno_text(errno));
    }
  }
}

}  // namespace thaw::cli
