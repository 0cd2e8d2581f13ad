// Runs the real `thaw` binary (THAW_CLI) to its end and collects its exit
// code and output, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>
#include <vector>

namespace thaw::testing {

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `thaw ARGS`, with ARGS as a shell would read them (quotes allowed).
inline CommandResult run_thaw_line(const std::string& args) {
  std::string command = std::string(THAW_CLI) + " " + args + " 2>&1";
  CommandResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) result.output.append(buf, n);
  int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// One argument for the shell, single-quoted.
inline std::string shell_quote(const std::string& arg) {
  std::string out = "'";
  for (char c : arg) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `thaw ARGS...`, each argument passed as it is.
inline CommandResult run_thaw(const std::vector<std::string>& args) {
  std::string line;
  for (const auto& a : args) line += (line.empty() ? "" : " ") + shell_quote(a);
  return run_thaw_line(line);
}

}  // namespace thaw::testing
