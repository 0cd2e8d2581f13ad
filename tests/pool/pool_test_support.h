// Helpers for pool tests that run the mini guest on /dev/kvm.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "pool/pool_manager.h"
#include "tests/kvm_available.h"
#include "tests/temp_dir.h"

namespace thaw::pool::testing {

using namespace std::chrono_literals;

// Pool tests skip like the others where /dev/kvm cannot be used.
#define THAW_POOL_REQUIRE_KVM() THAW_REQUIRE_KVM()

// The mini guest's clone buffer (guest/mini/README.md, thaw.after=clone).
inline constexpr uint64_t kCloneBuffer = 0x200000;
inline constexpr uint64_t kCloneBufferBytes = 64 * 1024;

inline std::vector<uint8_t> expected_clone_buffer(uint64_t input) {
  std::vector<uint8_t> bytes(kCloneBufferBytes);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + 7) ^ static_cast<uint8_t>(input);
  return bytes;
}

using ::thaw::testing::TempDir;

inline PoolManagerConfig test_config(const TempDir& dir) {
  PoolManagerConfig config;
  config.template_dir = dir / "templates";
  config.vsock_dir = dir / "vsock";
  config.autoscale_period = 100ms;
  config.cold_boot_timeout = 60s;
  return config;
}

// The mini guest, small: 32 MiB, a 4 KiB ring-3 function.
inline TemplateSpec mini_spec(const std::string& name, const std::string& after = "clone") {
  TemplateSpec spec;
  spec.name = name;
  spec.kernel = THAW_MINI_GUEST;
  spec.cmdline = "console=ttyS0 thaw.fn_bytes=4096 thaw.quiet=1 thaw.after=" + after;
  spec.mem_mib = 32;
  spec.vcpus = 1;
  return spec;
}

inline PoolStats::PerTemplate stats_of(const PoolManager& pool, const std::string& name) {
  for (const auto& t : pool.stats().templates) {
    if (t.name == name) return t;
  }
  ADD_FAILURE() << "no stats for template " << name;
  return {};
}

// Polls `done` every millisecond until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout = 30s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return done();
}

inline bool warm_at_least(const PoolManager& pool, const std::string& name, uint32_t n,
                          std::chrono::milliseconds timeout = 30s) {
  return eventually([&] { return stats_of(pool, name).warm >= n; }, timeout);
}

}  // namespace thaw::pool::testing
