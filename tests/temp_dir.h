// The one scratch directory of the tests: made fresh by mkdtemp under $TMPDIR
// (or /tmp), so parallel ctest processes never share one, and removed with
// everything in it when it goes.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>

namespace thaw::testing {

class TempDir {
 public:
  // `prefix` starts the directory's name, so a leftover one tells who made it.
  explicit TempDir(const std::string& prefix = "thaw-test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    path_ = std::move(pattern);
  }
  // Move-only: exactly one owner removes the directory.
  TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}
  TempDir& operator=(TempDir&& other) noexcept {
    if (this != &other) {
      remove();
      path_ = std::exchange(other.path_, {});
    }
    return *this;
  }
  ~TempDir() { remove(); }

  const std::string& path() const { return path_; }
  // The path of `name` inside the directory.
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  void remove() noexcept {
    if (path_.empty()) return;
    // Never throws from a destructor; a leftover scratch dir fails no test.
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }

  std::string path_;
};

}  // namespace thaw::testing
