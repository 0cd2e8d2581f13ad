#include "bench/process_timer.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <sstream>

namespace thaw::bench {

ProcessRun time_process(const std::vector<std::string>& argv, const std::string& stdin_path) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ProcessRun result;
  auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    if (!stdin_path.empty()) {
      int in = ::open(stdin_path.c_str(), O_RDONLY);
      if (in < 0) ::_exit(126);
      ::dup2(in, STDIN_FILENO);
    }
    int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(null, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  if (pid < 0) return result;
  int status = 0;
  ::waitpid(pid, &status, 0);
  result.wall_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Series time_series(const std::string& name, const std::vector<std::string>& argv, size_t runs, int expected_exit,
                   bool show_progress, const std::string& stdin_path) {
  Series series;
  series.name = name;
  std::vector<double> samples;
  // One untimed warm-up run pulls the binaries into the page cache.
  time_process(argv, stdin_path);
  for (size_t i = 0; i < runs; ++i) {
    auto run = time_process(argv, stdin_path);
    if (run.exit_code != expected_exit) {
      ++series.failures;
      if (series.failures <= 3) {
        std::fprintf(stderr, "  %s: run %zu exited with %d, expected %d\n", name.c_str(), i, run.exit_code,
                     expected_exit);
      }
      continue;
    }
    samples.push_back(run.wall_ms);
    if (show_progress) std::fprintf(stderr, "\r  %-28s %3zu/%zu", name.c_str(), i + 1, runs);
  }
  if (show_progress) std::fprintf(stderr, "\n");
  series.summary = summarize(samples);
  series.samples_ms = std::move(samples);
  return series;
}

std::pair<std::string, int> capture_stdout(const std::string& line) {
  std::string out;
  FILE* pipe = ::popen(line.c_str(), "r");
  if (pipe == nullptr) return {out, -1};
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = ::pclose(pipe);
  return {out, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
}

std::string find_in_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return {};
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return {};
}

}  // namespace thaw::bench
