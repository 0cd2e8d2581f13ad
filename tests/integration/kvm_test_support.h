// Shared helpers for tests that boot guests on /dev/kvm.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/kvm_available.h"
#include "vmm/vm.h"

namespace thaw::testing {

// Collects the guest's console output from any vCPU thread.
class CapturedConsole {
 public:
  vmm::ConsoleSink sink() {
    return [this](std::span<const char> bytes) {
      std::lock_guard lock(mutex_);
      text_.append(bytes.data(), bytes.size());
    };
  }
  std::string text() const {
    std::lock_guard lock(mutex_);
    return text_;
  }
  bool contains(const std::string& needle) const { return text().find(needle) != std::string::npos; }
  // Polls until every needle appears or the timeout passes.
  bool wait_for_all(const std::vector<std::string>& needles, std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      bool all = true;
      for (const auto& n : needles) all = all && contains(n);
      if (all) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::string text_;
};

// 64-bit FNV-1a over n bytes with byte[i] = i*31+7: the mini guest's
// built-in ring-3 function, recomputed on the host.
inline uint64_t mini_guest_fnv1a(uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (uint64_t i = 0; i < n; ++i) {
    h ^= static_cast<uint8_t>(i * 31 + 7);
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline std::string hex16(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016llx", static_cast<unsigned long long>(v));
  return buf;
}

inline vmm::VmConfig mini_config(const std::string& cmdline, CapturedConsole& console) {
  vmm::VmConfig config;
  config.kernel_path = THAW_MINI_GUEST;
  config.cmdline = cmdline;
  config.mem_mib = 128;
  config.console = console.sink();
  return config;
}

}  // namespace thaw::testing
