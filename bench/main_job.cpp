// thaw's main job: build a template from the mini guest, start the real
// thawd, drive acquire -> invoke -> release through the real RPC from several
// concurrent clients, and print cold boot versus warm clones.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/process_timer.h"
#include "rpc/pool_client.h"

namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// The daemon as a child process, stopped with SIGTERM (a clean drain).
class Daemon {
 public:
  Daemon(const std::string& thawd, const std::string& config, const std::string& log) {
    pid_ = ::fork();
    if (pid_ == 0) {
      FILE* out = std::fopen(log.c_str(), "w");
      if (out != nullptr) {
        ::dup2(::fileno(out), STDOUT_FILENO);
        ::dup2(::fileno(out), STDERR_FILENO);
      }
      ::execl(thawd.c_str(), thawd.c_str(), "--config", config.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~Daemon() { stop(); }
  int stop() {
    if (pid_ <= 0) return 0;
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  bool alive() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }

 private:
  pid_t pid_ = -1;
};

struct Samples {
  std::mutex mutex;
  std::vector<double> acquire, invoke, guest, release;
  size_t failures = 0;
  std::string first_failure;
};

void row(const char* name, const std::vector<double>& v) {
  auto s = thaw::bench::summarize(v);
  std::printf("  %-36s %9.3f %9.3f %9.3f   (%zu)\n", name, s.min_ms, s.median_ms, s.p99_ms, s.runs);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"thaw's main job: a template from the mini guest, the real thawd, and a short load through the\n"
               "real Cap'n Proto RPC (acquire -> invoke -> release), then cold boot versus warm clones."};
  size_t total = 1000;
  unsigned clients = 4;
  unsigned warm = 8;
  std::string thaw_cli = THAW_CLI, thawd = THAWD, kernel = THAW_MINI_GUEST;
  app.add_option("--requests", total, "acquire -> invoke -> release cycles in all")->capture_default_str();
  app.add_option("--clients", clients, "Concurrent RPC clients")->capture_default_str()->check(CLI::Range(1, 64));
  app.add_option("--warm", warm, "Warm clones the pool keeps (min_warm)")->capture_default_str();
  app.add_option("--kernel", kernel, "Guest kernel (the mini guest)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto work = std::filesystem::temp_directory_path() / ("thaw-main-job-" + std::to_string(::getpid()));
  std::filesystem::create_directories(work);
  const std::string socket = (work / "thaw.sock").string();
  {
    std::ofstream config(work / "thawd.toml");
    config << "socket = \"" << socket << "\"\n"
           << "template_dir = \"" << (work / "templates").string() << "\"\n"
           << "vsock_dir = \"" << (work / "vsock").string() << "\"\n"
           << "log_level = \"warn\"\n\n[[pool]]\nname = \"mini\"\nkernel = \"" << kernel << "\"\n"
           << "cmdline = \"console=ttyS0 thaw.quiet=1 thaw.after=agent\"\nmem_mib = 128\n"
           << "min_warm = " << warm << "\nmax_warm = " << warm * 2 << "\nmemory_budget_mib = 4096\n";
  }

  // Cold boot, whole process, for the comparison.
  std::fprintf(stderr, "[1/4] cold boot: 20 whole-process boots of the mini guest\n");
  auto cold = thaw::bench::time_series("cold boot", {thaw_cli, "boot", "--console", "none", "--kernel", kernel}, 20, 0,
                                       false);

  std::fprintf(stderr, "[2/4] starting thawd (template: cold boot + snapshot, then %u warm clones)\n", warm);
  Daemon daemon(thawd, (work / "thawd.toml").string(), (work / "thawd.log").string());
  auto deadline = Clock::now() + std::chrono::seconds(60);
  while (!std::filesystem::exists(socket)) {
    if (!daemon.alive() || Clock::now() > deadline) {
      std::fprintf(stderr, "thawd did not start; its log:\n");
      std::ifstream log(work / "thawd.log");
      std::fprintf(stderr, "%s\n", std::string(std::istreambuf_iterator<char>(log), {}).c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  double template_cold_ms = 0;
  double restore_ms_note = 0;
  {
    thaw::rpc::PoolConnection conn(socket);
    // Wait until the pool is warm, so the load measures hits.
    while (Clock::now() < deadline) {
      auto stats = conn.pool().statsRequest().send().wait(conn.wait_scope()).getStats();
      if (stats.getTemplates().size() > 0 && stats.getTemplates()[0].getWarm() >= warm) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    auto list = conn.pool().listTemplatesRequest().send().wait(conn.wait_scope()).getTemplates();
    if (list.size() > 0) template_cold_ms = list[0].getColdBootMs();
  }

  std::fprintf(stderr, "[3/4] load: %zu acquire -> invoke(hash) -> release from %u clients\n", total, clients);
  Samples samples;
  std::atomic<size_t> next{0};
  std::atomic<size_t> done{0};
  std::vector<std::thread> threads;
  for (unsigned c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      thaw::rpc::PoolConnection conn(socket);
      auto& ws = conn.wait_scope();
      while (next.fetch_add(1) < total) {
        try {
          auto t0 = Clock::now();
          auto acq = conn.pool().acquireRequest();
          acq.setTemplate("mini");
          acq.setLeaseMs(30000);
          acq.setTimeoutMs(5000);
          auto vm = acq.send().wait(ws).getVm();
          double acquire_ms = ms_since(t0);
          auto t1 = Clock::now();
          auto inv = vm.invokeRequest();
          inv.setFunction("hash");
          uint64_t n = 65536;
          inv.setPayload(kj::arrayPtr(reinterpret_cast<const kj::byte*>(&n), sizeof n));
          inv.setTimeoutMs(10000);
          auto result = inv.send().wait(ws);
          double invoke_ms = ms_since(t1);
          double guest_ms = result.getGuestMs();
          auto t2 = Clock::now();
          vm.releaseRequest().send().wait(ws);
          double release_ms = ms_since(t2);
          std::lock_guard lock(samples.mutex);
          if (result.getStatus() != 0) {
            if (samples.failures++ == 0) samples.first_failure = "invoke status " + std::to_string(result.getStatus());
          } else {
            samples.acquire.push_back(acquire_ms);
            samples.invoke.push_back(invoke_ms);
            samples.guest.push_back(guest_ms);
            samples.release.push_back(release_ms);
          }
        } catch (const kj::Exception& e) {
          std::lock_guard lock(samples.mutex);
          if (samples.failures++ == 0) samples.first_failure = e.getDescription().cStr();
        }
        size_t d = done.fetch_add(1) + 1;
        if (d % 100 == 0) std::fprintf(stderr, "\r  %zu/%zu", d, total);
      }
    });
  }
  for (auto& t : threads) t.join();
  std::fprintf(stderr, "\n[4/4] stats and shutdown\n");
  double private_mib_per_clone = 0;
  uint64_t hits = 0, misses = 0;
  {
    thaw::rpc::PoolConnection conn(socket);
    auto stats = conn.pool().statsRequest().send().wait(conn.wait_scope()).getStats();
    for (auto t : stats.getTemplates()) {
      uint32_t clones = t.getWarm() + t.getLeased();
      if (clones > 0) private_mib_per_clone = t.getPrivateMemoryMib() / clones;
      hits = t.getHits();
      misses = t.getMisses();
    }
  }
  int daemon_status = daemon.stop();
  (void)restore_ms_note;

  std::printf("\nthaw: cold boot versus warm clones (mini guest, 128 MiB), milliseconds\n");
  std::printf("  %-36s %9s %9s %9s\n", "", "min", "median", "p99");
  std::printf("  %-36s %9.3f %9.3f %9.3f   (%zu)\n", "cold boot, whole process", cold.summary.min_ms,
              cold.summary.median_ms, cold.summary.p99_ms, cold.summary.runs);
  std::printf("  %-36s %9.3f   (template: cold boot to boot-complete in thawd)\n", "template cold boot", template_cold_ms);
  row("warm acquire (RPC, until running)", samples.acquire);
  row("invoke hash(64 KiB), RPC + vsock", samples.invoke);
  row("  of which the guest's own time", samples.guest);
  row("release (reset in place)", samples.release);
  std::printf("  private memory per clone: %.2f MiB; pool hits %llu, misses %llu; failures %zu%s%s\n",
              private_mib_per_clone, static_cast<unsigned long long>(hits), static_cast<unsigned long long>(misses),
              samples.failures, samples.failures ? ": " : "", samples.first_failure.c_str());
  std::filesystem::remove_all(work);
  return samples.failures == 0 && daemon_status == 0 ? 0 : 1;
}
