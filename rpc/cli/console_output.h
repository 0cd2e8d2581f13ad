// Where `thaw boot` sends the guest's serial console: stdout, stderr, a
// file or nowhere. The file is opened only once the VM was created, so a
// bad kernel or flag leaves no file behind.
#pragma once

#include <mutex>
#include <span>
#include <string>

#include "base/unique_fd.h"
#include "vmm/vm_config.h"

namespace thaw::cli {

class ConsoleOutput {
 public:
  // `target` is "stdout", "stderr", "none" or a file path.
  explicit ConsoleOutput(std::string target) : target_(std::move(target)) {}
  ~ConsoleOutput() { flush(); }

  // Checks a file target can be created (its directory exists) without creating it.
  void validate() const;
  // Opens the target; call after the VM exists.
  void open();
  // A sink for VmConfig::console; buffers lines, safe from any vCPU thread.
  vmm::ConsoleSink sink();
  void flush();

 private:
  void write(std::span<const char> bytes);
  void flush_locked();

  std::string target_;
  std::mutex mutex_;
  UniqueFd file_;
  int fd_ = -1;
  std::string pending_;
};

}  // namespace thaw::cli
