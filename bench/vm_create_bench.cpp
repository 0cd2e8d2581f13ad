// What KVM_CREATE_VM costs as the creating process holds more memory
// mappings (VMAs). KVM registers an MMU notifier on the process's mm for
// every VM, and on the kernels here that registration walks and locks every
// VMA with the mmap lock held for writing, so page faults in the whole
// process wait meanwhile. A template worker with 1,000 warm clones holds
// ~6,100 VMAs (per clone: its guest memory, its vCPU's kvm_run page, two
// thread stacks with their guards), which is why restores slow down and
// acquire latency spreads as a worker's pool grows (README, density). The
// thread stacks now cost no VMA of their own (base/stack_thread.h).
//
// Each step adds anonymous one-page mappings of alternating protection (so
// neighbours cannot merge into one VMA), then times VM creations. Prints
// min, median and p99 per step; QEMU creates its one VM once per process,
// so there is no peer to run the same work.
//
// --hold N then makes N empty VMs (what a pool's prepared VM shells are)
// and says what the host pays to hold them: MemAvailable, slab, kernel
// stacks and vmalloc, and the tasks KVM starts with each VM. That is why a
// pool prepares no more shells than clones it may make (pool/autoscaler.h).
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/sample_summary.h"
#include "base/unique_fd.h"
#include "bench/json_report.h"

namespace {

using Clock = std::chrono::steady_clock;

size_t vma_count() {
  std::ifstream maps("/proc/self/maps");
  size_t n = 0;
  for (std::string line; std::getline(maps, line);) ++n;
  return n;
}

// Tasks on the whole host (the 4th field of /proc/loadavg: "running/total").
double host_tasks() {
  std::ifstream in("/proc/loadavg");
  std::string skip, tasks;
  in >> skip >> skip >> skip >> tasks;
  auto slash = tasks.find('/');
  return slash == std::string::npos ? 0 : std::stod(tasks.substr(slash + 1));
}

bool report_held_vms(int kvm, size_t count, thaw::bench::JsonReport& report) {
  // Freed VMs of the steps above finish their teardown first.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto before = thaw::bench::host_meminfo_kib();
  const double tasks_before = host_tasks();
  std::vector<thaw::UniqueFd> vms;
  for (size_t i = 0; i < count; ++i) {
    thaw::UniqueFd vm(::ioctl(kvm, KVM_CREATE_VM, 0));
    if (!vm) {
      std::fprintf(stderr, "thaw_bench_vm_create: KVM_CREATE_VM #%zu of --hold: %s\n", i + 1, std::strerror(errno));
      return false;
    }
    vms.push_back(std::move(vm));
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // tasks KVM starts per VM come up
  auto after = thaw::bench::host_meminfo_kib();
  const double n = static_cast<double>(count);
  std::printf("\n%zu empty VMs held (the host, /proc/meminfo; other work on the host counts too):\n", count);
  for (const char* key : {"MemAvailable", "Slab", "KernelStack", "VmallocUsed", "PageTables"}) {
    const bool available = key == std::string("MemAvailable");  // falls as the others rise
    double delta = available ? before[key] - after[key] : after[key] - before[key];
    std::printf("  %-13s %+10.0f KiB, %8.1f KiB a VM%s\n", key, delta, delta / n, available ? " (used)" : "");
    report.value(std::string(key) + " KiB a held VM", delta / n);
  }
  const double tasks = host_tasks() - tasks_before;
  std::printf("  tasks         %+10.0f, %8.2f a VM (KVM's per-VM kernel threads)\n", tasks, tasks / n);
  report.value("tasks a held VM", tasks / n);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"KVM_CREATE_VM latency against the number of memory mappings (VMAs) in the creating process: the\n"
               "cost a template worker pays per restore as its pool grows. Needs /dev/kvm."};
  std::vector<size_t> steps = {0, 1000, 3000, 6000, 12000};
  size_t runs = 50;
  size_t hold = 0;
  std::string kvm_path = "/dev/kvm", json_path;
  app.add_option("--vmas", steps, "Extra VMAs to hold at each step (ascending)")->capture_default_str();
  app.add_option("--runs", runs, "VM creations timed per step")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--kvm", kvm_path, "The KVM device")->capture_default_str();
  app.add_option("--hold", hold, "Then hold this many empty VMs and print the host memory and tasks they cost")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  app.add_option("--json", json_path, "Also write every sample to this file as JSON");
  CLI11_PARSE(app, argc, argv);

  thaw::UniqueFd kvm(::open(kvm_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm) {
    std::fprintf(stderr, "thaw_bench_vm_create: cannot open %s: %s\n", kvm_path.c_str(), std::strerror(errno));
    return 3;
  }
  thaw::bench::JsonReport report("vm_create");
  std::vector<void*> held;
  std::printf("%10s %10s | KVM_CREATE_VM ms: %8s %8s %8s\n", "extra", "VMAs", "min", "p50", "p99");
  for (size_t target : steps) {
    while (held.size() < target) {
      int prot = held.size() % 2 == 0 ? PROT_READ | PROT_WRITE : PROT_READ;
      void* p = ::mmap(nullptr, 4096, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) {
        std::fprintf(stderr, "thaw_bench_vm_create: mmap #%zu: %s (vm.max_map_count?)\n", held.size(),
                     std::strerror(errno));
        return 1;
      }
      held.push_back(p);
    }
    std::vector<double> samples;
    std::vector<thaw::UniqueFd> vms;
    for (size_t i = 0; i < runs; ++i) {
      auto start = Clock::now();
      thaw::UniqueFd vm(::ioctl(kvm.get(), KVM_CREATE_VM, 0));
      samples.push_back(thaw::to_ms(Clock::now() - start));
      if (!vm) {
        std::fprintf(stderr, "thaw_bench_vm_create: KVM_CREATE_VM: %s\n", std::strerror(errno));
        return 3;
      }
      vms.push_back(std::move(vm));
    }
    const size_t vmas = vma_count();
    vms.clear();
    // Destroying VMs frees memory after RCU grace periods: let them pass
    // before the next step's timings.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto s = thaw::summarize_samples(samples);
    std::printf("%10zu %10zu | %26.3f %8.3f %8.3f\n", target, vmas, s.min_ms, s.median_ms, s.p99_ms);
    report.samples("KVM_CREATE_VM with " + std::to_string(target) + " extra VMAs", samples);
    report.value("VMAs at " + std::to_string(target) + " extra", static_cast<double>(vmas));
  }
  for (void* p : held) ::munmap(p, 4096);
  if (hold > 0 && !report_held_vms(kvm.get(), hold, report)) return 3;
  return report.write(json_path) ? 0 : 1;
}
