// Who thawd runs as, through the real daemon: as root it refuses to start
// without a `user` (or allow_root); with one it becomes that user (no
// capabilities, no_new_privs) before it runs a guest and still serves; its
// socket is 0660 in a 0750 directory of `socket_group`, so a process
// outside the group cannot connect; a user who cannot open the KVM device
// is a config error naming it. Its template workers run as that user too,
// and a template's direct socket has the socket's mode and group.
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "rpc/pool_client.h"
#include "tests/rpc/scratch_cgroup.h"
#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

class ThawdPrivileges : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root: these tests start thawd as root";
    nobody_ = ::getpwnam("nobody");
    if (nobody_ == nullptr) GTEST_SKIP() << "this host has no user 'nobody'";
    ::chmod(dir_.c_str(), 0755);  // nobody must reach the test's files
  }

  // A private KVM node (same device as /dev/kvm) that `gid` may open:
  // /dev/kvm itself is often root's alone on development machines.
  std::string kvm_node(gid_t gid, mode_t mode) {
    struct stat kvm {};
    if (::stat("/dev/kvm", &kvm) != 0) return {};
    std::string path = (dir_ / "kvm").string();
    ::unlink(path.c_str());
    if (::mknod(path.c_str(), S_IFCHR | mode, kvm.st_rdev) != 0 || ::chown(path.c_str(), 0, gid) != 0 ||
        ::chmod(path.c_str(), mode) != 0) {
      return {};
    }
    return path;
  }

  TempDir scratch_{"thaw-rpc-priv"};
  std::filesystem::path dir_ = scratch_.path();
  struct passwd* nobody_ = nullptr;
};

// connect() to `socket` as uid/gid (and supplementary `groups`), in a child.
int connect_as(const std::string& socket, uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgroups(groups.size(), groups.data()) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0) {
      ::_exit(100);
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", socket.c_str());
    ::_exit(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 ? 0 : errno);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(ThawdPrivileges, RootWithoutAUserIsRefusedUnlessAllowed) {
  ThawdProcess d(dir_);
  d.write_config(d.config_text({}));
  auto r = run_shell(std::string(THAWD) + " --config " + d.config_path() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("running as root with no `user`"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--allow-root"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(d.socket())) << "a refused start must not listen";
}

TEST_F(ThawdPrivileges, BecomesItsUserBeforeAnyGuestAndStillServes) {
  THAW_REQUIRE_KVM();
  struct group* group = ::getgrgid(nobody_->pw_gid);
  ASSERT_NE(group, nullptr);
  std::string kvm = kvm_node(nobody_->pw_gid, 0660);
  if (kvm.empty()) GTEST_SKIP() << "cannot make a private KVM device node here (mknod refused)";
  ThawdProcess d(dir_);
  d.forbid_root();
  std::string extra = "user = \"nobody\"\nsocket_group = " + daemon::toml_string(group->gr_name) +
                      "\nkvm_device = " + daemon::toml_string(kvm) + "\n";
  d.write_config(d.config_text({mini_pool("mini")}, extra));
  ASSERT_TRUE(d.start(std::chrono::seconds(60))) << d.log();

  // The guest ran as nobody: the template's cold boot and its clones.
  auto r = run_shell("timeout 30 " + std::string(THAW_CLI) + " invoke mini echo --payload hi --timeout-ms 20000 --socket " +
                     d.socket() + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << d.log();
  EXPECT_NE(d.log().find("running as uid " + std::to_string(nobody_->pw_uid)), std::string::npos) << d.log();

  // The kernel's view of the daemon.
  auto status = d.proc_status();
  EXPECT_NE(status.find("Uid:\t" + std::to_string(nobody_->pw_uid)), std::string::npos) << status;
  EXPECT_NE(status.find("CapEff:\t0000000000000000"), std::string::npos) << status;
  EXPECT_NE(status.find("NoNewPrivs:\t1"), std::string::npos) << status;

  // Socket 0660 of the group, in a 0750 directory of the group.
  struct stat sock {}, parent {};
  ASSERT_EQ(::stat(d.socket().c_str(), &sock), 0);
  ASSERT_EQ(::stat(dir_.c_str(), &parent), 0);
  EXPECT_EQ(sock.st_mode & 0777, 0660u);
  EXPECT_EQ(sock.st_gid, group->gr_gid);
  EXPECT_EQ(parent.st_mode & 0777, 0750u);
  // Outside the group: refused; in it: connects.
  EXPECT_EQ(connect_as(d.socket(), 54321, 54321, {}), EACCES);
  EXPECT_EQ(connect_as(d.socket(), 54322, 54322, {group->gr_gid}), 0);
  // Its template worker: the same user, no capabilities, under its filter.
  pid_t worker = 0;
  {
    rpc::PoolConnection c(d.socket());
    auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
    for (auto t : list.getTemplates()) worker = static_cast<pid_t>(t.getWorkerPid());
  }
  ASSERT_GT(worker, 0) << d.log();
  std::ifstream worker_status_file("/proc/" + std::to_string(worker) + "/status");
  std::string worker_status((std::istreambuf_iterator<char>(worker_status_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(worker_status.find("Uid:\t" + std::to_string(nobody_->pw_uid)), std::string::npos) << worker_status;
  EXPECT_NE(worker_status.find("CapEff:\t0000000000000000"), std::string::npos) << worker_status;
  EXPECT_NE(worker_status.find("Seccomp:\t2"), std::string::npos) << worker_status;
  // The template's direct socket (its worker serves it) is guarded the same way.
  std::string direct = (dir_ / "thaw-mini.sock").string();
  struct stat direct_st {};
  ASSERT_EQ(::stat(direct.c_str(), &direct_st), 0) << direct << "\n" << d.log();
  EXPECT_EQ(direct_st.st_mode & 0777, 0660u);
  EXPECT_EQ(direct_st.st_gid, group->gr_gid);
  EXPECT_EQ(connect_as(direct, 54321, 54321, {}), EACCES);
  EXPECT_EQ(connect_as(direct, 54322, 54322, {group->gr_gid}), 0);
  int exit_status = d.stop();
  EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << d.log();
}

TEST_F(ThawdPrivileges, AUserWhoCannotOpenTheKvmDeviceIsAConfigError) {
  THAW_REQUIRE_KVM();
  std::string kvm = kvm_node(0, 0600);  // root's alone
  if (kvm.empty()) GTEST_SKIP() << "cannot make a private KVM device node here (mknod refused)";
  ThawdProcess d(dir_);
  d.forbid_root();
  d.write_config(d.config_text({}, "user = \"nobody\"\nkvm_device = " + daemon::toml_string(kvm) + "\n"));
  EXPECT_FALSE(d.start(std::chrono::seconds(20)));
  EXPECT_NE(d.log().find("'nobody' cannot open " + kvm), std::string::npos) << d.log();
  EXPECT_NE(d.log().find("config error"), std::string::npos) << d.log();
}

}  // namespace
}  // namespace thaw::testing

namespace thaw::testing {
namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// worker_cgroups = "auto" as under systemd's Delegate=: thawd starts as
// root in a cgroup v2 directory handed to its user (the directory and its
// cgroup.procs and cgroup.subtree_control owned by that user), becomes the
// user, moves itself into <cgroup>/thawd and puts its template's worker in
// <cgroup>/worker-<template>. Skips where there is no cgroup v2 to make one
// in.
TEST_F(ThawdPrivileges, UnderADelegatedCgroupEachWorkerGetsItsOwn) {
  THAW_REQUIRE_KVM();
  ScratchCgroup cgroup("thaw-delegated");
  if (!cgroup.skip_reason().empty()) GTEST_SKIP() << cgroup.skip_reason();
  const std::string& relative = cgroup.relative();
  const std::string& delegated = cgroup.path();
  for (const std::string& path : {delegated, delegated + "/cgroup.procs", delegated + "/cgroup.subtree_control"}) {
    ASSERT_EQ(::chown(path.c_str(), nobody_->pw_uid, nobody_->pw_gid), 0) << path << ": " << std::strerror(errno);
  }
  std::string kvm = kvm_node(nobody_->pw_gid, 0660);
  if (kvm.empty()) GTEST_SKIP() << "cannot make a private KVM device node here (mknod refused)";
  {
    ThawdProcess d(dir_);
    d.forbid_root();
    d.start_in_cgroup(delegated);
    d.write_config(d.config_text({mini_pool("mini")}, "user = \"nobody\"\nkvm_device = " + daemon::toml_string(kvm) + "\n"));
    ASSERT_TRUE(d.start(std::chrono::seconds(60))) << d.log();
    pid_t worker = 0;
    {
      rpc::PoolConnection c(d.socket());
      auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
      for (auto t : list.getTemplates()) worker = static_cast<pid_t>(t.getWorkerPid());
    }
    ASSERT_GT(worker, 0) << d.log();
    EXPECT_NE(d.log().find("worker cgroups: in " + delegated), std::string::npos) << d.log();
    EXPECT_NE(read_text("/proc/" + std::to_string(d.pid()) + "/cgroup").find("0::" + relative + "/thawd\n"),
              std::string::npos)
        << "thawd did not move into its leaf:\n" << read_text("/proc/" + std::to_string(d.pid()) + "/cgroup");
    EXPECT_NE(read_text("/proc/" + std::to_string(worker) + "/cgroup").find("0::" + relative + "/worker-mini\n"),
              std::string::npos)
        << read_text("/proc/" + std::to_string(worker) + "/cgroup") << d.log();
    auto r = run_shell("timeout 30 " + std::string(THAW_CLI) + " invoke mini echo --payload hi --timeout-ms 20000 --socket " +
                       d.socket() + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << d.log();
    int exit_status = d.stop();
    EXPECT_TRUE(WIFEXITED(exit_status) && WEXITSTATUS(exit_status) == 0) << d.log();
    EXPECT_FALSE(std::filesystem::exists(delegated + "/worker-mini")) << "the worker's cgroup outlived thawd";
  }
  // thawd's own leaf stays (a service's cgroup is systemd's to remove).
  EXPECT_EQ(cgroup.children(), std::vector<std::string>{"thawd"});
  EXPECT_EQ(cgroup.remove(), "");
}

}  // namespace
}  // namespace thaw::testing
