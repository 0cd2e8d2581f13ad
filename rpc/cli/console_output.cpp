#include "rpc/cli/console_output.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "base/errors.h"

namespace thaw::cli {

void ConsoleOutput::validate() const {
  if (target_ == "stdout" || target_ == "stderr" || target_ == "none") return;
  auto parent = std::filesystem::path(target_).parent_path();
  if (parent.empty()) parent = ".";
  std::error_code ec;
  if (!std::filesystem::is_directory(parent, ec)) {
    throw InputError("--console " + target_ + ": directory " + parent.string() + " does not exist");
  }
  if (std::filesystem::is_directory(target_, ec)) throw InputError("--console " + target_ + " is a directory");
}

void ConsoleOutput::open() {
  std::lock_guard lock(mutex_);
  if (target_ == "stdout") {
    fd_ = STDOUT_FILENO;
  } else if (target_ == "stderr") {
    fd_ = STDERR_FILENO;
  } else if (target_ != "none") {
    file_ = UniqueFd(::open(target_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
    if (!file_) throw_errno("open", "console file " + target_);
    fd_ = file_.get();
  }
}

vmm::ConsoleSink ConsoleOutput::sink() {
  return [this](std::span<const char> bytes) { write(bytes); };
}

void ConsoleOutput::write(std::span<const char> bytes) {
  std::lock_guard lock(mutex_);
  if (fd_ < 0) return;
  pending_.append(bytes.data(), bytes.size());
  // Whole lines at a time: one write(2) per line, not per byte.
  if (pending_.find('\n') != std::string::npos || pending_.size() >= 4096) flush_locked();
}

void ConsoleOutput::flush() {
  std::lock_guard lock(mutex_);
  flush_locked();
}

void ConsoleOutput::flush_locked() {
  size_t done = 0;
  while (fd_ >= 0 && done < pending_.size()) {
    ssize_t n = ::write(fd_, pending_.data() + done, pending_.size() - done);
    if (n <= 0) break;  // a closed console must not stop the VM
    done += static_cast<size_t>(n);
  }
  pending_.clear();
}

}  // namespace thaw::cli
