// /proc/self/mountinfo, read into its mount points and file-system types:
// for code that must know what a path lies on (9p, where Landlock cannot
// match its rules) or where a file system is mounted (cgroup2).
#pragma once

#include <string>
#include <vector>

namespace thaw {

struct MountEntry {
  std::string point;  // where it is mounted ("/sys/fs/cgroup")
  std::string type;   // its file-system type ("cgroup2", "9p", "ext4")
};

// The mounts in `text` (the format of /proc/<pid>/mountinfo), in order.
// Lines it cannot read are skipped.
std::vector<MountEntry> parse_mountinfo(const std::string& text);

// /proc/self/mountinfo, parsed; empty when it cannot be read.
std::vector<MountEntry> own_mounts();

}  // namespace thaw
