#include "base/mountinfo.h"

#include <fstream>
#include <sstream>

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
  std::ifstream in("/proc/self/mountinfo");
  return parse_mountinfo({std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()});
}

}  // namespace thaw
