#include "base/shipped_file.h"

#include <filesystem>

namespace thaw {

std::string installed_lib_dir() {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return (self.parent_path() / "../lib/thaw").lexically_normal().string();
}

std::string shipped_file(const std::string& built, const std::string& name) {
  std::error_code ec;
  if (!built.empty() && std::filesystem::is_regular_file(built, ec)) return built;
  std::string dir = installed_lib_dir();
  if (dir.empty()) return {};
  auto installed = std::filesystem::path(dir) / name;
  return std::filesystem::is_regular_file(installed, ec) ? installed.string() : std::string();
}

}  // namespace thaw
