// `thaw boot|snapshot --vsock PATH` and `thaw restore --vsock-dir DIR`: the
// real `thaw` binary gives the mini guest's agent (thaw.after=agent) a
// virtio-vsock device, a host client reaches it through the unix socket
// ("CONNECT 5000\n", then pool/invoke_protocol.h), and bad socket paths are
// exit 2 with nothing left behind.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pool/invoke_protocol.h"
#include "tests/integration/kvm_test_support.h"
#include "tests/integration/snapshot_test_support.h"
#include "tests/integration/stream_io.h"
#include "tests/integration/thaw_cli_runner.h"
#include "tests/unix_socket_support.h"

namespace thaw {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kAgentCmdline[] = "console=ttyS0 thaw.quiet=1 thaw.after=agent";
// Generous: the CI machine has two cores and runs other tests beside these.
constexpr auto kSocketAppears = 60s;
constexpr auto kAgentAnswers = 60s;

using testing::CommandResult;
using testing::read_text;
using testing::run_thaw;
using testing::ThawProcess;

bool is_socket(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

bool wait_for_socket(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (is_socket(path)) return true;
    std::this_thread::sleep_for(20ms);
  }
  return is_socket(path);
}

// One host client of a VM's vsock socket, connected to the agent's port.
class AgentStream {
 public:
  // Connects to `path` and asks for port 5000 until the guest accepts
  // ("OK <port>\n") or `timeout` passes; `last` gets the last failure.
  static std::unique_ptr<AgentStream> connect(const std::string& path, std::chrono::milliseconds timeout,
                                              std::string* last) {
    auto deadline = Clock::now() + timeout;
    do {
      std::unique_ptr<AgentStream> s(new AgentStream(testing::connect_unix_blocking(path)));
      if (!s->fd_) {
        *last = std::string("connect: ") + std::strerror(errno);
      } else {
        const std::string line = "CONNECT " + std::to_string(pool::kAgentPort) + "\n";
        std::string reply;
        if (testing::send_all(s->fd_.get(), line.data(), line.size())) {
          char c;
          while (reply.size() < 64 && testing::recv_all(s->fd_.get(), &c, 1, 10s)) {
            reply += c;
            if (c == '\n') break;
          }
        }
        if (reply.rfind("OK ", 0) == 0 && reply.back() == '\n') return s;
        *last = "reply '" + reply + "'";
      }
      std::this_thread::sleep_for(100ms);
    } while (Clock::now() < deadline);
    return nullptr;
  }

  struct Reply {
    uint32_t status = 0xffffffff;
    std::string payload;
  };

  // One invoke (pool/invoke_protocol.h); nullopt when the stream broke.
  std::optional<Reply> invoke(const std::string& name, const std::string& payload) {
    uint32_t length = static_cast<uint32_t>(2 + name.size() + payload.size());
    uint16_t name_len = static_cast<uint16_t>(name.size());
    std::string request(reinterpret_cast<const char*>(&length), 4);
    request.append(reinterpret_cast<const char*>(&name_len), 2);
    request += name + payload;
    if (!testing::send_all(fd_.get(), request.data(), request.size())) return std::nullopt;
    uint32_t head[3];  // length, status, guest microseconds
    if (!testing::recv_all(fd_.get(), head, sizeof head, kAgentAnswers)) return std::nullopt;
    if (head[0] < 8 || head[0] > pool::kMaxInvokeBytes) return std::nullopt;
    Reply reply;
    reply.status = head[1];
    reply.payload.resize(head[0] - 8);
    if (!testing::recv_all(fd_.get(), reply.payload.data(), reply.payload.size(), kAgentAnswers)) return std::nullopt;
    return reply;
  }

 private:
  explicit AgentStream(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Connects to the agent behind `socket` and checks one echo.
void expect_echo(const std::string& socket, const std::string& payload, const std::string& context) {
  std::string why;
  auto agent = AgentStream::connect(socket, kAgentAnswers, &why);
  ASSERT_TRUE(agent) << "no agent behind " << socket << ": " << why << "\n" << context;
  auto reply = agent->invoke("echo", payload);
  ASSERT_TRUE(reply) << "no echo reply\n" << context;
  EXPECT_EQ(reply->status, pool::kInvokeOk) << context;
  EXPECT_EQ(reply->payload, payload) << context;
}

std::vector<std::string> listing(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class ThawCliVsock : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_ / name; }

  // `thaw snapshot` into DIR/<name>: of the agent guest with a vsock device
  // on DIR/<name>.sock, or of the plain mini guest (the agent needs the
  // device) without one.
  void make_snapshot(const std::string& name, bool vsock) {
    std::vector<std::string> args = {"snapshot", "--kernel", THAW_MINI_GUEST,
                                     "--cmdline", vsock ? kAgentCmdline : "console=ttyS0 thaw.quiet=1",
                                     "--console", path(name + ".console"), "--timeout-ms", "120000",
                                     "--out", path(name)};
    if (vsock) {
      args.push_back("--vsock");
      args.push_back(path(name + ".sock"));
    }
    auto r = run_thaw(args);
    ASSERT_EQ(r.exit_code, 0) << r.output << read_text(path(name + ".console"));
    if (vsock) {
      EXPECT_NE(r.output.find("vsock"), std::string::npos) << r.output;
      EXPECT_FALSE(std::filesystem::exists(path(name + ".sock"))) << "the snapshot's VM is gone, so is its socket";
    }
  }

  testing::TempDir dir_{"thaw-cli-vsock"};
};

TEST_F(ThawCliVsock, HelpDescribesTheFlags) {
  auto boot = run_thaw({"boot", "--help"});
  EXPECT_EQ(boot.exit_code, 0) << boot.output;
  EXPECT_NE(boot.output.find("--vsock"), std::string::npos) << boot.output;
  EXPECT_NE(boot.output.find("stale socket"), std::string::npos) << boot.output;
  auto snap = run_thaw({"snapshot", "--help"});
  EXPECT_NE(snap.output.find("--vsock"), std::string::npos) << snap.output;
  auto restore = run_thaw({"restore", "--help"});
  EXPECT_NE(restore.output.find("--vsock-dir"), std::string::npos) << restore.output;
}

TEST_F(ThawCliVsock, BootServesTheAgentOverItsSocket) {
  THAW_REQUIRE_KVM();
  const std::string socket = path("boot.sock");
  ThawProcess thaw({"boot", "--kernel", THAW_MINI_GUEST, "--cmdline", kAgentCmdline, "--on-boot-complete",
                    "continue", "--timeout-ms", "300000", "--console", path("boot.console"), "--vsock", socket},
                   path("boot.log"));
  ASSERT_TRUE(thaw.started());
  ASSERT_TRUE(wait_for_socket(socket, kSocketAppears)) << thaw.output();
  expect_echo(socket, "hello over vsock from thaw boot", thaw.output() + read_text(path("boot.console")));
  EXPECT_TRUE(thaw.running()) << "the guest serves on until it is stopped\n" << thaw.output();

  // SIGTERM stops the VM; a guest that reached boot-complete is exit 0, and
  // its socket goes with it.
  auto code = thaw.stop(SIGTERM);
  ASSERT_TRUE(code.has_value()) << "thaw did not exit on SIGTERM\n" << thaw.output();
  EXPECT_EQ(*code, 0) << thaw.output();
  EXPECT_NE(thaw.output().find("reached boot-complete"), std::string::npos) << thaw.output();
  EXPECT_NE(thaw.output().find("SIGTERM"), std::string::npos) << thaw.output();
  EXPECT_FALSE(std::filesystem::exists(socket)) << "the socket outlived the VM";
}

TEST_F(ThawCliVsock, SnapshotClonesServeOnTheirOwnSockets) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  // A directory thaw makes (two levels) is removed again at exit.
  const std::string sockets = path("run/sockets");
  ThawProcess thaw({"restore", path("snap"), "--clones", "2", "--vsock-dir", sockets, "--run-ms", "300000",
                    "--console", path("clone0.console")},
                   path("restore.log"));
  ASSERT_TRUE(thaw.started());
  ASSERT_TRUE(wait_for_socket(sockets + "/clone-1.sock", kSocketAppears)) << thaw.output();
  ASSERT_TRUE(is_socket(sockets + "/clone-0.sock")) << thaw.output();
  expect_echo(sockets + "/clone-1.sock", "clone one answers", thaw.output());
  expect_echo(sockets + "/clone-0.sock", "and clone zero too", thaw.output() + read_text(path("clone0.console")));
  EXPECT_TRUE(thaw.running()) << thaw.output();

  // SIGTERM ends --run-ms early; the clones are stopped and reported.
  auto code = thaw.stop(SIGTERM);
  ASSERT_TRUE(code.has_value()) << "thaw did not exit on SIGTERM\n" << thaw.output();
  EXPECT_EQ(*code, 0) << thaw.output();
  EXPECT_NE(thaw.output().find("restored 2 clones"), std::string::npos) << thaw.output();
  EXPECT_NE(thaw.output().find("stopped by SIGTERM: 2 running, 0 exited cleanly, 0 failed"), std::string::npos)
      << thaw.output();
  EXPECT_FALSE(std::filesystem::exists(path("run"))) << "the socket directory thaw made outlived the clones";
}

// A signal ends a wait that would last minutes: --sequential waits up to
// --run-ms for each clone to finish, and the agent guest never does.
TEST_F(ThawCliVsock, SigintEndsASequentialWait) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  const std::string sockets = path("sockets");
  ThawProcess thaw({"restore", path("snap"), "--sequential", "--clones", "3", "--vsock-dir", sockets, "--run-ms",
                    "300000", "--json"},
                   path("restore.log"));
  ASSERT_TRUE(thaw.started());
  ASSERT_TRUE(wait_for_socket(sockets + "/clone-0.sock", kSocketAppears)) << thaw.output();
  auto code = thaw.stop(SIGINT, std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the --sequential wait outlasted SIGINT\n" << thaw.output();
  EXPECT_EQ(*code, 0) << thaw.output();
  const std::string out = thaw.output();
  EXPECT_NE(out.find("\"stopped_by\": \"SIGINT\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"clones\": 1"), std::string::npos) << "the next clone was made after the signal:\n" << out;
  EXPECT_NE(out.find("\"still_running\": 1"), std::string::npos) << out;
  EXPECT_NE(out.find("\"done\": 0"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(sockets)) << "the socket directory thaw made outlived the clones";
}

// Recording stops on SIGTERM too, and an interrupted recording leaves no
// working set: later clones would fault on every page it missed.
TEST_F(ThawCliVsock, SigtermEndsARecordingWithoutAWorkingSet) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  const std::string sockets = path("sockets");
  ThawProcess thaw({"restore", path("snap"), "--record-working-set", "--vsock-dir", sockets, "--run-ms", "300000"},
                   path("record.log"));
  ASSERT_TRUE(thaw.started());
  ASSERT_TRUE(wait_for_socket(sockets + "/clone-0.sock", kSocketAppears)) << thaw.output();
  auto code = thaw.stop(SIGTERM, std::chrono::seconds(30));
  ASSERT_TRUE(code.has_value()) << "the recording outlasted SIGTERM\n" << thaw.output();
  EXPECT_EQ(*code, 1) << thaw.output();
  EXPECT_NE(thaw.output().find("stopped by SIGTERM"), std::string::npos) << thaw.output();
  EXPECT_NE(thaw.output().find("no working set written"), std::string::npos) << thaw.output();
  EXPECT_FALSE(std::filesystem::exists(path("snap/working-set"))) << thaw.output();
  EXPECT_FALSE(std::filesystem::exists(sockets)) << "the socket directory thaw made outlived the clone";
}

TEST_F(ThawCliVsock, RestoreIntoAnExistingDirectoryKeepsItAndReplacesStaleSockets) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  const std::string sockets = path("sockets");
  std::filesystem::create_directories(sockets);
  ASSERT_TRUE(testing::make_stale_unix_socket(sockets + "/clone-0.sock")) << std::strerror(errno);
  ASSERT_TRUE(is_socket(sockets + "/clone-0.sock"));
  auto r = run_thaw({"restore", path("snap"), "--vsock-dir", sockets, "--run-ms", "200", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"vsock_dir\""), std::string::npos) << r.output;
  EXPECT_TRUE(std::filesystem::is_directory(sockets)) << "a directory thaw did not make stays";
  EXPECT_TRUE(listing(sockets).empty()) << "the clone's socket outlived it";
}

TEST_F(ThawCliVsock, VsockSnapshotWithoutVsockDirIsBadInput) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  auto before = listing(dir_.path());
  // As before --vsock-dir existed: such a snapshot's clones need a socket.
  auto r = run_thaw({"restore", path("snap"), "--clones", "2"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("has a vsock device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--vsock-dir"), std::string::npos) << r.output;
  EXPECT_EQ(listing(dir_.path()), before);
}

TEST_F(ThawCliVsock, VsockDirForASnapshotWithoutVsockIsBadInput) {
  THAW_REQUIRE_KVM();
  make_snapshot("plain", /*vsock=*/false);
  if (HasFatalFailure()) return;
  auto before = listing(dir_.path());
  auto r = run_thaw({"restore", path("plain"), "--vsock-dir", path("sockets")});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("has no vsock device"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--vsock-dir"), std::string::npos) << r.output;
  EXPECT_EQ(listing(dir_.path()), before) << "no socket directory for a refused restore";
}

TEST_F(ThawCliVsock, VsockDirWhoseSocketsDoNotFitIsBadInput) {
  THAW_REQUIRE_KVM();
  make_snapshot("snap", /*vsock=*/true);
  if (HasFatalFailure()) return;
  auto before = listing(dir_.path());
  // 94 bytes: "/clone-9.sock" still fits in 107, "/clone-10.sock" does not.
  std::string sockets = path("s");
  sockets += std::string(94 - sockets.size(), 'x');
  auto r = run_thaw({"restore", path("snap"), "--clones", "11", "--vsock-dir", sockets});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("clone-10.sock"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("at most 107"), std::string::npos) << r.output;
  EXPECT_EQ(listing(dir_.path()), before) << "no socket directory for a refused restore";

  // A clone socket something listens on: refused, the listener untouched.
  std::filesystem::create_directories(path("busy"));
  UniqueFd busy;  // another VMM's socket
  ASSERT_NO_THROW(busy = listen_unix(path("busy/clone-1.sock")));
  auto in_use = run_thaw({"restore", path("snap"), "--clones", "2", "--vsock-dir", path("busy")});
  EXPECT_EQ(in_use.exit_code, 2) << in_use.output;
  EXPECT_NE(in_use.output.find("clone-1.sock is in use"), std::string::npos) << in_use.output;
  EXPECT_EQ(listing(path("busy")), std::vector<std::string>{"clone-1.sock"});

  // A regular file in place of the directory.
  std::ofstream(path("file")) << "keep me";
  auto file = run_thaw({"restore", path("snap"), "--vsock-dir", path("file")});
  EXPECT_EQ(file.exit_code, 2) << file.output;
  EXPECT_NE(file.output.find("not a directory"), std::string::npos) << file.output;
  EXPECT_EQ(read_text(path("file")), "keep me");
}

// Checked before any VM is made: no KVM needed.
TEST_F(ThawCliVsock, BadSocketPathsAreBadInputAndLeaveNothingBehind) {
  auto before = listing(dir_.path());
  for (const std::string command : {"boot", "snapshot"}) {
    SCOPED_TRACE(command);
    auto run = [&](const std::string& socket) {
      std::vector<std::string> args = {command, "--kernel", THAW_MINI_GUEST, "--console", path("console"),
                                       "--vsock", socket};
      if (command == "snapshot") {
        args.push_back("--out");
        args.push_back(path("snap"));
      }
      return run_thaw(args);
    };
    // 108 bytes: one more than sun_path holds with its NUL.
    std::string too_long = path("t");
    too_long += std::string(108 - too_long.size(), 'x');
    auto r = run(too_long);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_NE(r.output.find("108 bytes"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("at most 107"), std::string::npos) << r.output;

    auto missing = run(path("no-such-dir/vm.sock"));
    EXPECT_EQ(missing.exit_code, 2) << missing.output;
    EXPECT_NE(missing.output.find("no-such-dir does not exist"), std::string::npos) << missing.output;

    auto empty = run("");
    EXPECT_EQ(empty.exit_code, 2) << empty.output;
    EXPECT_NE(empty.output.find("--vsock is empty"), std::string::npos) << empty.output;
    EXPECT_EQ(listing(dir_.path()), before) << "a refused " << command << " left files behind";
  }

  // A regular file is never replaced.
  std::ofstream(path("regular")) << "precious";
  auto file = run_thaw({"boot", "--kernel", THAW_MINI_GUEST, "--vsock", path("regular")});
  EXPECT_EQ(file.exit_code, 2) << file.output;
  EXPECT_NE(file.output.find("exists and is not a socket"), std::string::npos) << file.output;
  EXPECT_EQ(read_text(path("regular")), "precious");

  // Nor is a socket something listens on (another VM's).
  UniqueFd busy;
  ASSERT_NO_THROW(busy = listen_unix(path("busy.sock")));
  auto in_use = run_thaw({"boot", "--kernel", THAW_MINI_GUEST, "--vsock", path("busy.sock")});
  EXPECT_EQ(in_use.exit_code, 2) << in_use.output;
  EXPECT_NE(in_use.output.find("is in use"), std::string::npos) << in_use.output;
  EXPECT_TRUE(is_socket(path("busy.sock")));
}

// A stale socket (its VMM was killed) is replaced, and removed at the end.
TEST_F(ThawCliVsock, StaleSocketIsReplaced) {
  THAW_REQUIRE_KVM();
  const std::string socket = path("stale.sock");
  ASSERT_TRUE(testing::make_stale_unix_socket(socket)) << std::strerror(errno);
  ASSERT_TRUE(is_socket(socket));
  auto r = run_thaw({"boot", "--kernel", THAW_MINI_GUEST, "--cmdline", kAgentCmdline, "--console", "none",
                     "--timeout-ms", "120000", "--vsock", socket, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("\"vsock\""), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(socket));
}

// A stopped serving guest: thaw killed outright leaves its socket stale,
// and the next thaw on that path takes it over.
TEST_F(ThawCliVsock, SocketOfAKilledThawIsTakenOver) {
  THAW_REQUIRE_KVM();
  const std::string socket = path("vm.sock");
  std::vector<std::string> args = {"boot", "--kernel", THAW_MINI_GUEST, "--cmdline", kAgentCmdline,
                                   "--on-boot-complete", "continue", "--timeout-ms", "300000", "--console",
                                   "none", "--vsock", socket};
  {
    ThawProcess first(args, path("first.log"));
    ASSERT_TRUE(wait_for_socket(socket, kSocketAppears)) << first.output();
    // While it runs, a second thaw on the same path is refused.
    auto second = run_thaw({"boot", "--kernel", THAW_MINI_GUEST, "--vsock", socket});
    EXPECT_EQ(second.exit_code, 2) << second.output;
    EXPECT_NE(second.output.find("is in use"), std::string::npos) << second.output;
    EXPECT_FALSE(first.stop(SIGKILL).has_value());
  }
  ASSERT_TRUE(is_socket(socket)) << "SIGKILL leaves the socket file";
  ThawProcess third(args, path("third.log"));
  ASSERT_TRUE(third.started());
  // The stale file is replaced by a live socket: wait for the agent.
  expect_echo(socket, "taken over", third.output());
  auto code = third.stop(SIGINT);
  ASSERT_TRUE(code.has_value()) << third.output();
  EXPECT_EQ(*code, 0) << third.output();
  EXPECT_FALSE(std::filesystem::exists(socket));
}

}  // namespace
}  // namespace thaw
