#include "base/proc_self_status.h"

#include <fstream>
#include <iterator>

namespace thaw {

std::string proc_self_status(const std::string& key) {
  std::ifstream status("/proc/self/status");
  const std::string prefix = key + ":";
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    size_t start = line.find_first_not_of(" \t", prefix.size());
    return start == std::string::npos ? std::string() : line.substr(start);
  }
  return {};
}

int current_thread_count() {
  std::string threads = proc_self_status("Threads");
  try {
    return threads.empty() ? 0 : std::stoi(threads);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string read_kernel_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace thaw
