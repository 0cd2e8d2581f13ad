// Reading /proc/<pid>/mountinfo: optional fields between the options and
// the "-" separator, malformed lines skipped, and this process's own table.
#include "base/mountinfo.h"

#include <gtest/gtest.h>

namespace thaw {
namespace {

TEST(Mountinfo, ReadsPointAndTypePastOptionalFields) {
  const std::string text =
      "1 0 0:1 / / rw,relatime - 9p rootfs rw,trans=virtio\n"
      "31 25 0:27 / /sys/fs/cgroup/unified rw,nosuid shared:10 master:2 - cgroup2 cgroup2 rw\n"
      "garbage\n"
      "40 1 8:1 / /mnt/no-type rw shared:3 -\n"
      "41 1 8:1 / /srv rw - ext4 /dev/sda1 rw\n";
  auto mounts = parse_mountinfo(text);
  ASSERT_EQ(mounts.size(), 3u);
  EXPECT_EQ(mounts[0].point, "/");
  EXPECT_EQ(mounts[0].type, "9p");
  EXPECT_EQ(mounts[1].point, "/sys/fs/cgroup/unified");
  EXPECT_EQ(mounts[1].type, "cgroup2");
  EXPECT_EQ(mounts[2].point, "/srv");
  EXPECT_EQ(mounts[2].type, "ext4");
  EXPECT_TRUE(parse_mountinfo("").empty());
}

TEST(Mountinfo, OwnTableHasTheRootAndProc) {
  bool root = false, proc = false;
  for (const auto& m : own_mounts()) {
    root |= m.point == "/";
    proc |= m.point == "/proc" && m.type == "proc";
  }
  EXPECT_TRUE(root);
  EXPECT_TRUE(proc);
}

}  // namespace
}  // namespace thaw
