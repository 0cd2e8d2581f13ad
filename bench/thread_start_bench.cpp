// What it costs to start a thread that runs under a seccomp filter, the two
// ways thaw does it: the thread applies the filter itself (a one-off VM's
// vCPU and vsock muxer threads) or a spawner that applied it once starts
// the thread, which inherits it (a pool's clones; base/filtered_thread_spawner.h).
// Times request -> the thread's body running under the filter, and the
// CPU the process spent per thread. Uses the real 'vcpu' filter; needs no
// KVM. glibc's std::thread without a filter is the baseline. No peer: QEMU
// and Firecracker apply their filters per thread (Firecracker's jailer
// installs them on each of its threads).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/filtered_thread_spawner.h"
#include "base/sample_summary.h"
#include "base/seccomp_filter.h"
#include "bench/json_report.h"
#include "vmm/vcpu_seccomp.h"

namespace {

using Clock = std::chrono::steady_clock;

double process_cpu_ms() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto ms = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_usec) / 1e3; };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

struct Way {
  std::string name;
  // Starts a thread running `body`; returns something to join.
  std::function<std::function<void()>(std::function<void()>)> start;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Starting a thread that runs under thaw's 'vcpu' seccomp filter: applying the filter on the thread\n"
               "versus inheriting it from a spawner thread. Prints min, median and p99 of request -> body running\n"
               "under the filter, and CPU per thread. Needs no /dev/kvm."};
  size_t runs = 500;
  std::string json_path;
  app.add_option("--runs", runs, "Threads started per way")->capture_default_str()->check(CLI::Range(10, 1000000));
  app.add_option("--json", json_path, "Also write every sample to this file as JSON");
  CLI11_PARSE(app, argc, argv);

  const thaw::SeccompFilter& filter = thaw::vmm::vcpu_thread_filter();
  thaw::vmm::prepare_thread_for_vcpu_filter();
  thaw::FilteredThreadSpawner spawner(filter);
  std::vector<Way> ways = {
      {"std::thread, no filter (baseline)",
       [](std::function<void()> body) {
         auto t = std::make_shared<std::thread>(std::move(body));
         return std::function<void()>([t] { t->join(); });
       }},
      {"thread applies the filter itself",
       [&](std::function<void()> body) {
         auto t = std::make_shared<thaw::StackThread>([&filter, body = std::move(body)] {
           filter.apply_to_this_thread();
           body();
         }, "bench");
         return std::function<void()>([t] { t->join(); });
       }},
      {"spawner starts it, filter inherited",
       [&](std::function<void()> body) {
         auto t = std::make_shared<thaw::StackThread>(spawner.spawn(std::move(body), "bench"));
         return std::function<void()>([t] { t->join(); });
       }},
  };
  thaw::bench::JsonReport report("thread_start");
  std::printf("%-40s %9s %9s %9s   %s\n", "request -> body under its filter (ms)", "min", "median", "p99", "CPU/thread");
  std::vector<double> medians;
  for (const auto& way : ways) {
    std::vector<double> samples;
    const double cpu_before = process_cpu_ms();
    for (size_t i = 0; i < runs; ++i) {
      std::promise<Clock::time_point> running;
      auto started = running.get_future();
      auto requested = Clock::now();
      auto join = way.start([&] { running.set_value(Clock::now()); });
      samples.push_back(std::chrono::duration<double, std::milli>(started.get() - requested).count());
      join();
    }
    const double cpu_us = (process_cpu_ms() - cpu_before) * 1e3 / static_cast<double>(runs);
    auto s = thaw::summarize_samples(samples);
    std::printf("%-40s %9.3f %9.3f %9.3f   %.0f us\n", way.name.c_str(), s.min_ms, s.median_ms, s.p99_ms, cpu_us);
    report.samples(way.name, samples);
    report.value(way.name + ": CPU us per thread", cpu_us);
    medians.push_back(s.median_ms);
  }
  if (medians[2] > 0) std::printf("applying / inheriting (medians): %.1fx\n", medians[1] / medians[2]);
  return report.write(json_path) ? 0 : 1;
}
