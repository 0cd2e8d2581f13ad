// Tests of irreversible process-wide steps (Landlock, namespaces,
// capabilities) run them in a forked child, which fills in a report of what
// each operation returned; the parent gets the report back and asserts.
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>

#include "base/process_namespaces.h"
#include "base/unique_fd.h"

namespace thaw {

using Report = std::map<std::string, std::string>;

// "ok" when the call worked, else the name of its errno ("EACCES").
inline std::string outcome(long rc) {
  if (rc >= 0) return "ok";
  const char* name = ::strerrorname_np(errno);
  return name != nullptr ? name : "errno " + std::to_string(errno);
}

// Runs `body` in a forked child, which applies its policy there and fills in
// the report; the parent gets the report back. A child that throws reports
// "threw"; one that dies reports "child".
inline Report in_child(const std::function<void(Report&)>& body) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {{"child", "pipe2 failed"}};
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  pid_t pid = ::fork();
  if (pid == 0) {
    read_end.reset();
    Report report;
    try {
      body(report);
    } catch (const std::exception& e) {
      report["threw"] = e.what();
    }
    std::string text;
    for (const auto& [key, value] : report) text += key + "\t" + value + "\n";
    size_t sent = 0;
    while (sent < text.size()) {
      ssize_t n = ::write(write_end.get(), text.data() + sent, text.size() - sent);
      if (n <= 0) ::_exit(2);
      sent += static_cast<size_t>(n);
    }
    ::_exit(0);
  }
  write_end.reset();
  std::string text;
  char buf[4096];
  for (ssize_t n; (n = ::read(read_end.get(), buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
  int status = 0;
  ::waitpid(pid, &status, 0);
  Report report;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    auto tab = line.find('\t');
    if (tab != std::string::npos) report[line.substr(0, tab)] = line.substr(tab + 1);
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) report["child"] = "status " + std::to_string(status);
  return report;
}

// Whether this host lets a process make a user namespace: "" when it does,
// else why not.
inline std::string user_namespaces_refused() {
  std::string why = user_namespace_refusal();
  return why.empty() ? "" : "this host refuses user namespaces: " + why;
}

}  // namespace thaw
