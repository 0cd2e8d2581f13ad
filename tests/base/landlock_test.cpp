// Landlock policies, each applied in a forked child (Landlock cannot be
// undone, and the test process must stay free): the child tries file
// operations after apply() and sends back what each returned ("ok" or the
// errno's name); the parent asserts. Every test skips, naming why, where the
// kernel offers no Landlock.
#include "base/landlock.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "base/unique_fd.h"
#include "tests/child_report.h"
#include "tests/kvm_available.h"
#include "tests/temp_dir.h"

namespace thaw {
namespace {

std::string open_outcome(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC, 0600);
  std::string result = outcome(fd);
  if (fd >= 0) ::close(fd);
  return result;
}

// Opens the directory and reads every entry.
std::string list_outcome(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return outcome(-1);
  errno = 0;
  while (::readdir(d) != nullptr) {
  }
  std::string result = outcome(errno == 0 ? 0 : -1);
  ::closedir(d);
  return result;
}

std::string bind_outcome(const std::string& path) {
  UniqueFd sock(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  return outcome(::bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr));
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  if (!in) return "<" + outcome(-1) + ">";
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

class LandlockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    abi_ = landlock_abi();
    if (abi_ == 0) GTEST_SKIP() << "the kernel offers no Landlock (not built in, or not in lsm= at boot)";
  }

  // Asserts the child neither threw nor died; its report otherwise.
  static void expect_clean(const Report& r) {
    EXPECT_EQ(r.count("threw"), 0u) << r.at("threw");
    EXPECT_EQ(r.count("child"), 0u) << r.at("child");
  }

  int abi_ = 0;
  testing::TempDir dir_{"thaw-landlock"};
};

TEST_F(LandlockTest, ReadOnlyDirectoryCanBeReadButNothingWrittenThere) {
  const std::string ro = dir_ / "ro";
  ::mkdir(ro.c_str(), 0700);
  write_file(ro + "/data", "hello");
  auto r = in_child([&](Report& out) {
    out["applied"] = LandlockPolicy().allow_read(ro).apply().applied ? "yes" : "no";
    out["read"] = read_text(ro + "/data");
    out["list"] = list_outcome(ro);
    out["open for writing"] = open_outcome(ro + "/data", O_WRONLY);
    out["create"] = open_outcome(ro + "/new", O_WRONLY | O_CREAT);
    out["mkdir"] = outcome(::mkdir((ro + "/sub").c_str(), 0700));
    out["unlink"] = outcome(::unlink((ro + "/data").c_str()));
  });
  expect_clean(r);
  EXPECT_EQ(r["applied"], "yes");
  EXPECT_EQ(r["read"], "hello");
  EXPECT_EQ(r["list"], "ok");
  EXPECT_EQ(r["open for writing"], "EACCES");
  EXPECT_EQ(r["create"], "EACCES");
  EXPECT_EQ(r["mkdir"], "EACCES");
  EXPECT_EQ(r["unlink"], "EACCES");
}

TEST_F(LandlockTest, ReadWriteDirectoryAllowsCreateRenameRemoveAndSocketBind) {
  const std::string rw = dir_ / "rw";
  ::mkdir(rw.c_str(), 0700);
  auto r = in_child([&](Report& out) {
    LandlockPolicy().allow_read_write(rw).apply();
    out["create"] = open_outcome(rw + "/a", O_WRONLY | O_CREAT);
    out["truncate"] = outcome(::truncate((rw + "/a").c_str(), 0));
    out["rename"] = outcome(::rename((rw + "/a").c_str(), (rw + "/b").c_str()));
    out["mkdir"] = outcome(::mkdir((rw + "/sub").c_str(), 0700));
    out["rename into subdir"] = outcome(::rename((rw + "/b").c_str(), (rw + "/sub/c").c_str()));
    out["unlink"] = outcome(::unlink((rw + "/sub/c").c_str()));
    out["rmdir"] = outcome(::rmdir((rw + "/sub").c_str()));
    out["bind"] = bind_outcome(rw + "/sock");
    out["symlink"] = outcome(::symlink("sock", (rw + "/link").c_str()));
    // Root has CAP_MKNOD; only Landlock stands in the way.
    out["mknod char"] = outcome(::mknod((rw + "/null").c_str(), S_IFCHR | 0600, makedev(1, 3)));
    out["create outside"] = open_outcome(dir_ / "outside", O_WRONLY | O_CREAT);
  });
  expect_clean(r);
  EXPECT_EQ(r["create"], "ok");
  EXPECT_EQ(r["truncate"], "ok");
  EXPECT_EQ(r["rename"], "ok");
  EXPECT_EQ(r["mkdir"], "ok");
  // Needs REFER (ABI 2); ABI 1 refuses every reparenting with EXDEV.
  EXPECT_EQ(r["rename into subdir"], abi_ >= 2 ? "ok" : "EXDEV");
  if (abi_ >= 2) {  // (otherwise there is no sub/c to remove)
    EXPECT_EQ(r["unlink"], "ok");
    EXPECT_EQ(r["rmdir"], "ok");
  }
  EXPECT_EQ(r["bind"], "ok");
  EXPECT_EQ(r["symlink"], "ok");
  EXPECT_EQ(r["mknod char"], "EACCES");
  EXPECT_EQ(r["create outside"], "EACCES");
  struct stat st {};
  EXPECT_EQ(::stat((rw + "/sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
}

TEST_F(LandlockTest, PathOutsideEveryRuleCanNeitherBeReadNorListed) {
  const std::string allowed = dir_ / "allowed";
  const std::string other = dir_ / "other";
  ::mkdir(allowed.c_str(), 0700);
  ::mkdir(other.c_str(), 0700);
  write_file(other + "/secret", "x");
  auto r = in_child([&](Report& out) {
    LandlockPolicy().allow_read_write(allowed).apply();
    out["read"] = open_outcome(other + "/secret", O_RDONLY);
    out["list"] = list_outcome(other);
    out["list parent"] = list_outcome(dir_.path());
    out["list allowed"] = list_outcome(allowed);
  });
  expect_clean(r);
  EXPECT_EQ(r["read"], "EACCES");
  EXPECT_EQ(r["list"], "EACCES");
  EXPECT_EQ(r["list parent"], "EACCES");
  EXPECT_EQ(r["list allowed"], "ok");
}

TEST_F(LandlockTest, MissingPathIsSkippedAndNamedInTheSummary) {
  const std::string real = dir_ / "real";
  const std::string missing = dir_ / "missing";
  ::mkdir(real.c_str(), 0700);
  write_file(real + "/f", "data");
  auto r = in_child([&](Report& out) {
    auto result = LandlockPolicy().allow_read(missing).allow_read(real).apply();
    out["applied"] = result.applied ? "yes" : "no";
    out["abi"] = std::to_string(result.abi);
    out["summary"] = result.summary;
    out["read"] = read_text(real + "/f");
  });
  expect_clean(r);
  EXPECT_EQ(r["applied"], "yes");
  EXPECT_EQ(r["abi"], std::to_string(abi_));
  const std::string expected = "landlock ABI " + std::to_string(abi_) +
                               ": 1 rule (1 read, 0 read-write, 0 device); skipped 1 missing: " + missing;
  // Below ABI 5 the line goes on to say what the ABI cannot enforce.
  if (abi_ >= 5) {
    EXPECT_EQ(r["summary"], expected);
  } else {
    EXPECT_EQ(r["summary"].substr(0, expected.size()), expected);
  }
  EXPECT_EQ(r["read"], "data");
}

TEST_F(LandlockTest, FileRulesCoverThatFileOnly) {
  const std::string rw_file = dir_ / "rw.txt";
  const std::string ro_file = dir_ / "ro.txt";
  const std::string neighbour = dir_ / "neighbour.txt";
  write_file(rw_file, "rw");
  write_file(ro_file, "ro");
  write_file(neighbour, "n");
  auto r = in_child([&](Report& out) {
    out["summary"] = LandlockPolicy().allow_read_write(rw_file).allow_read(ro_file).apply().summary;
    out["rw: open read-write"] = open_outcome(rw_file, O_RDWR);
    out["rw: truncate"] = open_outcome(rw_file, O_WRONLY | O_TRUNC);
    out["ro: read"] = read_text(ro_file);
    out["ro: open for writing"] = open_outcome(ro_file, O_WRONLY);
    out["neighbour: read"] = open_outcome(neighbour, O_RDONLY);
    out["create beside"] = open_outcome(dir_ / "new.txt", O_WRONLY | O_CREAT);
    out["list the directory"] = list_outcome(dir_.path());
  });
  expect_clean(r);
  EXPECT_NE(r["summary"].find(": 2 rules (1 read, 1 read-write, 0 device)"), std::string::npos) << r["summary"];
  EXPECT_EQ(r["rw: open read-write"], "ok");
  EXPECT_EQ(r["rw: truncate"], "ok");
  EXPECT_EQ(r["ro: read"], "ro");
  EXPECT_EQ(r["ro: open for writing"], "EACCES");
  EXPECT_EQ(r["neighbour: read"], "EACCES");
  EXPECT_EQ(r["create beside"], "EACCES");
  EXPECT_EQ(r["list the directory"], "EACCES");
}

TEST_F(LandlockTest, NoRulesDeniesEveryFileSystemAccess) {
  const std::string file = dir_ / "f";
  write_file(file, "x");
  auto r = in_child([&](Report& out) {
    out["summary"] = LandlockPolicy().apply().summary;
    out["read"] = open_outcome(file, O_RDONLY);
    out["list"] = list_outcome(dir_.path());
    out["create"] = open_outcome(dir_ / "g", O_WRONLY | O_CREAT);
    out["read /etc"] = open_outcome("/etc/passwd", O_RDONLY);
  });
  expect_clean(r);
  EXPECT_NE(r["summary"].find(": 0 rules"), std::string::npos) << r["summary"];
  EXPECT_EQ(r["read"], "EACCES");
  EXPECT_EQ(r["list"], "EACCES");
  EXPECT_EQ(r["create"], "EACCES");
  EXPECT_EQ(r["read /etc"], "EACCES");
}

TEST_F(LandlockTest, ApplySetsNoNewPrivs) {
  auto r = in_child([&](Report& out) {
    out["before"] = std::to_string(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
    LandlockPolicy().allow_read(dir_.path()).apply();
    out["after"] = std::to_string(::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  });
  expect_clean(r);
  if (r["before"] == "1") std::cout << "note: no_new_privs was already set before apply()\n";
  EXPECT_EQ(r["after"], "1");
}

TEST_F(LandlockTest, RefusesToApplyWithOtherThreadsRunning) {
  auto r = in_child([&](Report& out) {
    int ready[2];
    if (::pipe(ready) != 0) return;
    std::thread sleeper([&] {
      char c;
      [[maybe_unused]] auto n = ::read(ready[0], &c, 1);
    });
    try {
      LandlockPolicy().apply();
      out["apply"] = "applied";
    } catch (const std::logic_error& e) {
      out["apply"] = e.what();
    }
    [[maybe_unused]] auto n = ::write(ready[1], "x", 1);
    sleeper.join();
  });
  expect_clean(r);
  EXPECT_NE(r["apply"].find("with 2 threads running"), std::string::npos) << r["apply"];
}

// IOCTL_DEV (ABI 5) is settled when a device is opened, and checked only on
// character and block devices: an fd no path opened (an eventfd here, KVM's
// VM and vCPU fds in thaw) takes any ioctl its driver knows.
TEST_F(LandlockTest, DeviceIoctlsNeedADeviceRuleButAnonymousInodesDoNot) {
  if (abi_ < 5) GTEST_SKIP() << "device ioctls are restricted from Landlock ABI 5; this kernel has " << abi_;
  auto r = in_child([&](Report& out) {
    LandlockPolicy().allow_device("/dev/null").allow_read("/dev/zero").apply();
    termios attrs{};
    UniqueFd null_fd(::open("/dev/null", O_RDWR | O_CLOEXEC));
    out["null: tcgets"] = outcome(::ioctl(null_fd.get(), TCGETS, &attrs));
    UniqueFd zero_fd(::open("/dev/zero", O_RDONLY | O_CLOEXEC));
    out["zero: tcgets"] = outcome(::ioctl(zero_fd.get(), TCGETS, &attrs));
    out["zero: fioclex"] = outcome(::ioctl(zero_fd.get(), FIOCLEX));
    UniqueFd event(::eventfd(0, EFD_CLOEXEC));
    out["eventfd: tcgets"] = outcome(::ioctl(event.get(), TCGETS, &attrs));
  });
  expect_clean(r);
  EXPECT_EQ(r["null: tcgets"], "ENOTTY");  // reached the driver, which knows no such request
  EXPECT_EQ(r["zero: tcgets"], "EACCES");
  EXPECT_EQ(r["zero: fioclex"], "ok");     // fd-level ioctls are never restricted
  EXPECT_EQ(r["eventfd: tcgets"], "ENOTTY");
}

// The worker's use: allow /dev/kvm, open it after apply(), make a VM and a
// vCPU and issue ioctls on all three fds. Without the device rule, even
// KVM_GET_API_VERSION is refused.
TEST_F(LandlockTest, KvmWorksWithADeviceRuleForDevKvmAlone) {
  if (abi_ < 5) GTEST_SKIP() << "device ioctls are restricted from Landlock ABI 5; this kernel has " << abi_;
  THAW_REQUIRE_KVM();
  auto r = in_child([&](Report& out) {
    LandlockPolicy().allow_device("/dev/kvm").apply();
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    out["open /dev/kvm"] = outcome(kvm.get());
    out["KVM_GET_API_VERSION"] = outcome(::ioctl(kvm.get(), KVM_GET_API_VERSION, 0));
    UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
    out["KVM_CREATE_VM"] = outcome(vm.get());
    out["vm: KVM_CHECK_EXTENSION"] = outcome(::ioctl(vm.get(), KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY));
    UniqueFd vcpu(::ioctl(vm.get(), KVM_CREATE_VCPU, 0));
    out["KVM_CREATE_VCPU"] = outcome(vcpu.get());
    kvm_regs regs{};
    out["vcpu: KVM_GET_REGS"] = outcome(::ioctl(vcpu.get(), KVM_GET_REGS, &regs));
  });
  expect_clean(r);
  EXPECT_EQ(r["open /dev/kvm"], "ok");
  EXPECT_EQ(r["KVM_GET_API_VERSION"], "ok");
  EXPECT_EQ(r["KVM_CREATE_VM"], "ok");
  EXPECT_EQ(r["vm: KVM_CHECK_EXTENSION"], "ok");
  EXPECT_EQ(r["KVM_CREATE_VCPU"], "ok");
  EXPECT_EQ(r["vcpu: KVM_GET_REGS"], "ok");

  auto denied = in_child([&](Report& out) {
    LandlockPolicy().allow_read_write("/dev").apply();
    UniqueFd kvm(::open("/dev/kvm", O_RDWR | O_CLOEXEC));
    out["open /dev/kvm"] = outcome(kvm.get());
    out["KVM_GET_API_VERSION"] = outcome(::ioctl(kvm.get(), KVM_GET_API_VERSION, 0));
  });
  expect_clean(denied);
  EXPECT_EQ(denied["open /dev/kvm"], "ok");
  EXPECT_EQ(denied["KVM_GET_API_VERSION"], "EACCES");
}

}  // namespace
}  // namespace thaw
