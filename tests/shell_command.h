// Runs a shell command line to its end for the tests that drive the real
// binaries (`thaw`, `thawd`): its exit code and what it wrote to stdout
// (add "2>&1" to the line for stderr too). One popen reader for them all.
#pragma once

#include <cstdio>
#include <sys/wait.h>

#include <string>

namespace thaw::testing {

struct CommandResult {
  int exit_code = -1;  // -1: could not run, or ended by a signal
  std::string output;
};

inline CommandResult run_shell(const std::string& line) {
  CommandResult result;
  FILE* pipe = ::popen(line.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

}  // namespace thaw::testing
