#include "base/mountinfo.h"

#include <sstream>

#include "base/proc_self_status.h"

namespace thaw {

std::vector<MountEntry> parse_mountinfo(const std::string& text) {
  std::vector<MountEntry> mounts;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    // ID PARENT MAJ:MIN ROOT POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER
    std::istringstream fields(line);
    std::string id, parent, dev, root, point, field, type;
    fields >> id >> parent >> dev >> root >> point;
    while (fields >> field && field != "-") {
    }
    if (!(fields >> type) || point.empty()) continue;
    mounts.push_back({point, type});
  }
  return mounts;
}

std::vector<MountEntry> own_mounts() {
  return parse_mountinfo(read_kernel_text("/proc/self/mountinfo"));
}

}  // namespace thaw
