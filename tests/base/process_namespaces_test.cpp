// A worker's own namespaces and its empty capability sets, each entered in a
// forked child (none of it can be undone): the child reports what it sees
// from inside, the parent compares with itself. Tests that need a user
// namespace skip, naming why, where the host refuses one.
#include "base/process_namespaces.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "base/proc_self_status.h"
#include "tests/child_report.h"
#include "tests/temp_dir.h"

namespace thaw {
namespace {

std::string namespace_of(const std::string& kind) {
  std::error_code ec;
  return std::filesystem::read_symlink("/proc/self/ns/" + kind, ec).string();
}

TEST(ProcessNamespaces, WorkerGetsItsOwnUserNetIpcAndUtsNamespaces) {
  if (std::string why = user_namespaces_refused(); !why.empty()) GTEST_SKIP() << why;
  testing::TempDir dir;
  const std::string file = dir.path() + "/made-inside";
  Report r = in_child([&](Report& report) {
    NamespaceResult result = enter_private_namespaces();
    report["summary"] = result.summary;
    for (const char* kind : {"user", "net", "ipc", "uts"}) report[std::string("ns.") + kind] = namespace_of(kind);
    // Our own id maps to itself, so a file made in here has our owner.
    report["create"] = outcome(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    report["uid"] = std::to_string(::geteuid());
    // No network but a loopback that is down.
    UniqueFd tcp(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(9);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    report["connect"] = outcome(::connect(tcp.get(), reinterpret_cast<sockaddr*>(&to), sizeof to));
  });
  ASSERT_EQ(r.count("threw"), 0u) << r["threw"];
  ASSERT_EQ(r.count("child"), 0u) << r["child"];
  EXPECT_NE(r["summary"].find("user net ipc uts"), std::string::npos) << r["summary"];
  for (const char* kind : {"user", "net", "ipc", "uts"}) {
    EXPECT_NE(r[std::string("ns.") + kind], namespace_of(kind)) << kind << " namespace is the test's own";
  }
  EXPECT_EQ(r["create"], "ok");
  EXPECT_EQ(r["uid"], std::to_string(::geteuid()));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid()) << "the file made inside should have our owner outside";
  EXPECT_EQ(r["connect"], "ENETUNREACH");
}

TEST(ProcessNamespaces, RefusedWithMoreThanOneThread) {
  Report r = in_child([](Report& report) {
    std::thread second([] { ::pause(); });
    second.detach();
    try {
      enter_private_namespaces();
      report["result"] = "entered";
    } catch (const std::logic_error& e) {
      report["result"] = e.what();
    }
    report["user"] = namespace_of("user");
  });
  EXPECT_NE(r["result"].find("2 threads running"), std::string::npos) << r["result"];
  EXPECT_EQ(r["user"], namespace_of("user"));
}

TEST(ProcessNamespaces, DroppingCapabilitiesLeavesNoneAndNoneToRegain) {
  Report r = in_child([](Report& report) {
    // Inside a user namespace a process starts with every capability there:
    // the case a worker is in, and one we can make without root.
    if (::unshare(CLONE_NEWUSER) == 0) report["before"] = proc_self_status("CapEff");
    drop_all_capabilities();
    report["effective"] = proc_self_status("CapEff");
    report["permitted"] = proc_self_status("CapPrm");
    report["bounding"] = proc_self_status("CapBnd");
    report["ambient"] = proc_self_status("CapAmb");
    report["unshare-net"] = outcome(::unshare(CLONE_NEWNET));
  });
  ASSERT_EQ(r.count("threw"), 0u) << r["threw"];
  if (r.count("before")) {
    EXPECT_NE(r["before"], "0000000000000000") << "a new user namespace gives every capability";
  }
  EXPECT_EQ(r["effective"], "0000000000000000");
  EXPECT_EQ(r["permitted"], "0000000000000000");
  // The bounding set shrinks only with CAP_SETPCAP: root, or inside the namespace.
  if (r.count("before") || ::geteuid() == 0) {
    EXPECT_EQ(r["bounding"], "0000000000000000");
  }
  EXPECT_EQ(r["ambient"], "0000000000000000");
  EXPECT_EQ(r["unshare-net"], "EPERM") << "making a namespace needs CAP_SYS_ADMIN, which is gone";
}

TEST(ProcSelfStatus, ReadsFieldsAndMissingOnesAreEmpty) {
  EXPECT_EQ(proc_self_status("Pid"), std::to_string(::getpid()));
  EXPECT_GE(current_thread_count(), 1);
  EXPECT_EQ(proc_self_status("NoSuchField"), "");
  EXPECT_EQ(proc_self_status("Pi"), "") << "a prefix of a key is not the key";
}

}  // namespace
}  // namespace thaw
