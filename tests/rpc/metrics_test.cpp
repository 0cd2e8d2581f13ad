// thawd's Prometheus endpoint after real traffic: the families an operator
// alerts on are there (latencies as histograms in seconds, memory in bytes,
// each pool's policy, invoke errors by kind, build info), and the scrape
// passes `promtool check metrics` where Debian's prometheus is installed.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "tests/rpc/thawd_process.h"

namespace thaw::testing {
namespace {

sockaddr_in loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// Binds `fd` to a loopback port of the kernel's choosing; the port, or 0.
uint16_t bind_any_loopback_port(int fd) {
  sockaddr_in addr = loopback(0);
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return 0;
  }
  return ntohs(addr.sin_port);
}

// A TCP port nothing listens on now (the kernel's pick).
uint16_t free_port() {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return bind_any_loopback_port(fd.get());
}

// Whether this machine connects over IPv4 loopback at all (an emulated
// machine may come up with `lo` down).
bool loopback_works() {
  UniqueFd server(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  uint16_t port = bind_any_loopback_port(server.get());
  if (port == 0 || ::listen(server.get(), 1) != 0) return false;
  UniqueFd client(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = loopback(port);
  return ::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
}

// GET /metrics over HTTP/1.0; the body, or "" when nothing answers.
std::string scrape(uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in addr = loopback(port);
  timeval limit{5, 0};  // a scrape that hangs is a failed scrape
  ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return {};
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n";
  if (::send(fd.get(), request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) return {};
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = ::recv(fd.get(), buf, sizeof buf, 0)) > 0;) response.append(buf, static_cast<size_t>(n));
  auto body = response.find("\r\n\r\n");
  return body == std::string::npos ? std::string() : response.substr(body + 4);
}

class ThawdMetrics : public ::testing::Test {
 protected:
  void SetUp() override {
    THAW_REQUIRE_KVM();
    if (!loopback_works()) GTEST_SKIP() << "this machine cannot connect over 127.0.0.1 (loopback down?)";
    port_ = free_port();
    ASSERT_NE(port_, 0);
    daemon_ = std::make_unique<ThawdProcess>(dir_);
    // Room for the returning clone (see PoolManager.CreateAcquireReleaseAcquireReusesTheResetClone):
    // the refill may fill the pool to its target while a first lease that outlives a restore is out.
    auto pool = mini_pool("mini");
    pool.policy.max_warm = 8;
    daemon_->write_config(daemon_->config_text({pool}, "metrics = \"127.0.0.1:" + std::to_string(port_) + "\"\n"));
    ASSERT_TRUE(daemon_->start(std::chrono::seconds(60))) << daemon_->log();
    // Traffic: a good invoke, then one the guest does not know (status, not an error).
    auto cli = "timeout 30 " + std::string(THAW_CLI) + " invoke mini echo --payload hi --timeout-ms 20000 --socket " +
               daemon_->socket() + " 2>&1";
    auto r = run_shell(cli);
    ASSERT_EQ(r.exit_code, 0) << r.output << "\n" << daemon_->log();
    // A released clone is reset in the background: wait for the reset
    // histogram (slow machines: emulated KVM takes seconds), keeping the
    // last scrape that answered.
    for (auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
         std::chrono::steady_clock::now() < deadline;) {
      if (auto text = scrape(port_); !text.empty()) text_ = std::move(text);
      if (text_.find("thaw_pool_reset_seconds_count{template=\"mini\"} 1") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }

  TempDir scratch_{"thaw-rpc-metrics"};
  std::filesystem::path dir_ = scratch_.path();
  std::unique_ptr<ThawdProcess> daemon_;
  uint16_t port_ = 0;
  std::string text_;
};

TEST_F(ThawdMetrics, LatenciesAreHistogramsInSecondsAndPolicyAndBuildAreThere) {
  ASSERT_FALSE(text_.empty()) << "nothing answered on the metrics port\n" << daemon_->log();
  for (const char* needle : {
           "# TYPE thaw_pool_restore_seconds histogram",
           "thaw_pool_restore_seconds_bucket{template=\"mini\",le=\"+Inf\"}",
           "# TYPE thaw_pool_reset_seconds histogram",
           "thaw_pool_reset_seconds_count{template=\"mini\"} 1",
           "# TYPE thaw_acquire_latency_seconds histogram",
           "# TYPE thaw_invoke_latency_seconds histogram",
           "thaw_invoke_latency_seconds_count{template=\"mini\"} 1",
           "# TYPE thaw_pool_private_memory_bytes gauge",
           "thaw_pool_min_warm{template=\"mini\"} 1",
           "thaw_pool_max_warm{template=\"mini\"} 8",
           "thaw_pool_memory_budget_bytes{template=\"mini\"} 1073741824",
           "thaw_build_info{version=\"",
       }) {
    EXPECT_NE(text_.find(needle), std::string::npos) << "missing " << needle << " in:\n" << text_;
  }
  // Nothing is left in milliseconds or MiB.
  EXPECT_EQ(text_.find("_ms{"), std::string::npos) << text_;
  EXPECT_EQ(text_.find("_mib{"), std::string::npos) << text_;
}

TEST_F(ThawdMetrics, AScrapeWithTrafficPassesPromtool) {
  if (run_shell("command -v promtool >/dev/null").exit_code != 0) {
    GTEST_SKIP() << "promtool is not installed (Debian package prometheus)";
  }
  ASSERT_FALSE(text_.empty());
  std::string path = (dir_ / "scrape.txt").string();
  std::ofstream(path) << text_;
  auto r = run_shell("promtool check metrics < " + path + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace thaw::testing
