// thawd as an operator sees it: bad configs rejected with file, line and
// key; SIGTERM with a clone still leased exits 0; a restart picks up the
// templates on disk without a [[pool]] in the config.
#include <poll.h>
#include <sys/socket.h>

#include "base/unix_socket.h"
#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"
#include "tests/rpc/thawd_process.h"
#include "tests/unix_socket_support.h"

namespace thaw::testing {
namespace {

class ThawdLifecycle : public ::testing::Test {
 protected:
  TempDir scratch_{"thaw-rpc-life"};
  std::filesystem::path dir_ = scratch_.path();
};

// Clients that take every fd thawd may open make accept() fail with
// EMFILE; once they go, thawd must accept again (before, one failed accept
// ended its accept loop for good and new clients hung in the backlog).
TEST_F(ThawdLifecycle, AcceptKeepsGoingAfterRunningOutOfFds) {
  ThawdProcess d(dir_);
  d.write_config(d.config_text({}));
  ASSERT_TRUE(d.start(std::chrono::seconds(30), /*max_open_files=*/64)) << d.log();
  std::vector<UniqueFd> hogs;
  for (int i = 0; i < 120; ++i) {
    UniqueFd fd = connect_unix_blocking(d.socket());
    if (!fd) break;  // the backlog is full too: enough
    hogs.push_back(std::move(fd));
  }
  ASSERT_GT(hogs.size(), 64u) << "could not queue more connections than thawd has fds";
  for (int i = 0; i < 200 && d.log().find("accept failed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(d.log().find("accept failed"), std::string::npos) << d.log();
  hogs.clear();
  auto r = run_shell("timeout 20 " + std::string(THAW_CLI) + " templates --socket " + d.socket() + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output << "\n" << d.log();
  int status = d.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << d.log();
}

TEST_F(ThawdLifecycle, BadConfigsNameTheFileLineAndKey) {
  ThawdProcess d(dir_);
  struct Case {
    std::string text;
    std::string line;  // "thawd.toml:N"
    std::string key;
  };
  std::string loud = d.config_text({});
  auto unequal = mini_pool();
  unequal.policy.min_warm = 5;
  unequal.policy.max_warm = 2;
  auto no_memory = mini_pool();
  no_memory.spec.mem_mib = 0;
  loud.replace(loud.find("\"debug\""), 7, "\"loud\"");
  const std::vector<Case> cases = {
      {d.config_text({}, "sockett = \"/x\"\n"), "thawd.toml:5", "sockett"},
      {d.config_text({}, "workers = \"many\"\n"), "thawd.toml:5", "workers"},
      {d.config_text({}, "autoscale_period_ms = 5\n"), "thawd.toml:5", "autoscale_period_ms"},
      {d.config_text({}, "autoscale_stall_ms = 20000\n"), "thawd.toml:5", "autoscale_stall_ms"},
      {loud, "thawd.toml:4", "log_level"},
      {d.config_text({mini_pool("Bad Name")}), "thawd.toml:", "pool[0]"},
      // Pools start after the header and the allowed_image_dirs line.
      {d.config_text({unequal}), "thawd.toml:12", "pool[0].min_warm"},
      {d.config_text({no_memory}), "thawd.toml:11", "pool[0].mem_mib"},
      {"socket = \"/x\"\n[[pool]]\nname = \"a\"\n", "thawd.toml:", "pool[0].kernel"},
      {"socket = \n", "thawd.toml", "TOML"},
  };
  for (const auto& c : cases) {
    d.write_config(c.text);
    auto [code, out] = d.run_to_exit("--config " + d.config_path() + " --check-config");
    EXPECT_EQ(code, 2) << c.text << out;
    EXPECT_NE(out.find(c.line), std::string::npos) << "wanted " << c.line << " in:\n" << out;
    EXPECT_NE(out.find(c.key), std::string::npos) << "wanted " << c.key << " in:\n" << out;
  }
  auto [code, out] = d.run_to_exit("--config " + (dir_ / "missing.toml").string());
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("missing.toml"), std::string::npos) << out;
  auto help = d.run_to_exit("--help");
  EXPECT_EQ(help.first, 0);
  EXPECT_NE(help.second.find("--config"), std::string::npos) << help.second;
}

TEST_F(ThawdLifecycle, SigtermWithALeaseExitsCleanAndARestartKeepsTemplates) {
  auto why = kvm_unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << "needs KVM: " << why;
  {
    ThawdProcess d(dir_);
    d.write_config(d.config_text({mini_pool()}));
    ASSERT_TRUE(d.start()) << d.log();
    rpc::PoolConnection c(d.socket());
    auto req = c.pool().acquireRequest();
    req.setTemplate("mini");
    req.setLeaseMs(60000);
    req.setTimeoutMs(5000);
    auto vm = req.send().wait(c.wait_scope()).getVm();
    vm.infoRequest().send().wait(c.wait_scope());
    auto start = std::chrono::steady_clock::now();
    int status = d.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << d.log();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_FALSE(std::filesystem::exists(d.socket())) << "the socket file must go with the daemon";
    // The client now sees its capability broken.
    auto broken = kj::runCatchingExceptions([&] { vm.infoRequest().send().wait(c.wait_scope()); });
    EXPECT_TRUE(broken != nullptr);
  }
  {
    ThawdProcess d(dir_);
    d.write_config(d.config_text({}));  // no [[pool]]: the template must come from disk
    ASSERT_TRUE(d.start()) << d.log();
    rpc::PoolConnection c(d.socket());
    auto list = c.pool().listTemplatesRequest().send().wait(c.wait_scope());
    ASSERT_EQ(list.getTemplates().size(), 1u) << d.log();
    EXPECT_EQ(list.getTemplates()[0].getName(), "mini");
    auto req = c.pool().acquireRequest();
    req.setTemplate("mini");
    req.setLeaseMs(5000);
    req.setTimeoutMs(5000);
    auto vm = req.send().wait(c.wait_scope()).getVm();
    EXPECT_EQ(vm.infoRequest().send().wait(c.wait_scope()).getTemplateName(), "mini");
    vm.releaseRequest().send().wait(c.wait_scope());
    int status = d.stop();
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << d.log();
  }
}

// Under systemd's Type=notify: READY=1 only once the configured pool has
// its min_warm clones, then STOPPING=1 when SIGTERM starts the drain.
TEST_F(ThawdLifecycle, TellsTheServiceManagerReadyOncePoolsAreWarmAndStopping) {
  auto why = kvm_unavailable_reason();
  if (!why.empty()) GTEST_SKIP() << "needs KVM: " << why;
  const std::string notify_path = (dir_ / "notify").string();
  UniqueFd notify(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_un addr{};
  socklen_t length = 0;
  ASSERT_TRUE(fill_unix_address(notify_path, addr, length));
  ASSERT_EQ(::bind(notify.get(), reinterpret_cast<sockaddr*>(&addr), length), 0);
  auto next_message = [&](std::chrono::seconds timeout) {
    pollfd p{notify.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count() * 1000)) != 1) return std::string("(none)");
    char buf[512];
    ssize_t n = ::recv(notify.get(), buf, sizeof buf, 0);
    return n < 0 ? std::string("(error)") : std::string(buf, static_cast<size_t>(n));
  };

  ThawdProcess d(dir_);
  auto pool = mini_pool();
  pool.policy.min_warm = pool.policy.max_warm = 2;
  d.write_config(d.config_text({pool}));
  ::setenv("NOTIFY_SOCKET", notify_path.c_str(), 1);  // the child inherits it
  bool started = d.start();
  ::unsetenv("NOTIFY_SOCKET");
  ASSERT_TRUE(started) << d.log();
  std::string ready = next_message(std::chrono::seconds(60));
  EXPECT_EQ(ready.rfind("READY=1\n", 0), 0u) << ready << "\n" << d.log();
  EXPECT_NE(ready.find("every configured pool is warm"), std::string::npos) << ready;
  {
    rpc::PoolConnection c(d.socket());
    auto stats = c.pool().statsRequest().send().wait(c.wait_scope()).getStats();
    ASSERT_EQ(stats.getTemplates().size(), 1u);
    EXPECT_GE(stats.getTemplates()[0].getWarm(), 2u) << "READY=1 came before the pool was warm";
  }
  int status = d.stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status << "\n" << d.log();
  EXPECT_EQ(next_message(std::chrono::seconds(1)).rfind("STOPPING=1", 0), 0u) << d.log();
}

}  // namespace
}  // namespace thaw::testing
