// What a page fault costs the host as the faulting process holds more VMs.
// KVM registers an MMU notifier on the process's mm for every VM; a change
// to any page table entry of the process (a copy-on-write fault, a
// MADV_DONTNEED, an munmap) calls every VM's notifier, and each looks the
// range up in its own memory slots. A template worker holds one VM per warm
// clone, so with 1,000 clones every fault a running clone takes, and every
// write the host makes into a clone's memory (the control page at acquire),
// pays for 1,000 lookups. This measures that cost; it does not change it.
//
// Each step holds N VMs, each with one memory slot over its own private
// mapping of a shared memory file (as clones map their snapshot), then
// times, on a fresh private mapping of the same file outside every VM:
// write faults (copy on write from the page cache), then MADV_DONTNEED of
// the dirtied pages (what a reset in place does). Prints min, median and
// p99 per step; QEMU holds one VM per process, so there is no peer to run
// the same work.
#include <fcntl.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/sample_summary.h"
#include "base/unique_fd.h"
#include "bench/json_report.h"

namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;
constexpr size_t kSlotBytes = 2 << 20;  // each VM's memory slot

// One VM holding one slot over its own private mapping of `file`.
struct HeldVm {
  thaw::UniqueFd fd;
  void* memory = nullptr;
};

bool add_vm(int kvm, int file, std::vector<HeldVm>& vms) {
  HeldVm vm;
  vm.fd = thaw::UniqueFd(::ioctl(kvm, KVM_CREATE_VM, 0));
  if (!vm.fd) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: KVM_CREATE_VM #%zu: %s\n", vms.size(), std::strerror(errno));
    return false;
  }
  vm.memory = ::mmap(nullptr, kSlotBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0);
  if (vm.memory == MAP_FAILED) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: mmap for VM #%zu: %s\n", vms.size(), std::strerror(errno));
    return false;
  }
  kvm_userspace_memory_region region{};
  region.slot = 0;
  region.guest_phys_addr = 0;
  region.memory_size = kSlotBytes;
  region.userspace_addr = reinterpret_cast<uint64_t>(vm.memory);
  if (::ioctl(vm.fd.get(), KVM_SET_USER_MEMORY_REGION, &region) != 0) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: KVM_SET_USER_MEMORY_REGION for VM #%zu: %s\n", vms.size(),
                 std::strerror(errno));
    ::munmap(vm.memory, kSlotBytes);
    return false;
  }
  vms.push_back(std::move(vm));
  return true;
}

struct ProbeSample {
  double fault_us = 0;     // one write fault, averaged over the probe's pages
  double dontneed_ms = 0;  // MADV_DONTNEED of every page the probe dirtied
};

// Maps `pages` of `file` privately, writes one byte a page, drops them.
bool probe(int file, size_t pages, ProbeSample& out) {
  const size_t bytes = pages * kPage;
  auto* p = static_cast<volatile char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0));
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: mmap of the probe: %s\n", std::strerror(errno));
    return false;
  }
  auto start = Clock::now();
  for (size_t i = 0; i < pages; ++i) p[i * kPage] = static_cast<char>(i);
  out.fault_us = thaw::to_ms(Clock::now() - start) * 1000.0 / static_cast<double>(pages);
  start = Clock::now();
  ::madvise(const_cast<char*>(p), bytes, MADV_DONTNEED);
  out.dontneed_ms = thaw::to_ms(Clock::now() - start);
  ::munmap(const_cast<char*>(p), bytes);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Host page-fault cost against the number of VMs in the faulting process: the MMU-notifier fan-out a\n"
               "template worker pays per fault as its pool grows. Needs /dev/kvm."};
  std::vector<size_t> steps = {0, 1, 100, 500, 1000};
  size_t runs = 50;
  size_t pages = 256;
  std::string kvm_path = "/dev/kvm", json_path;
  app.add_option("--vms", steps, "VMs to hold at each step (ascending)")->capture_default_str();
  app.add_option("--runs", runs, "Probes timed per step")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--pages", pages, "Pages each probe faults in and drops")
      ->capture_default_str()
      ->check(CLI::Range(1, 1 << 18));
  app.add_option("--kvm", kvm_path, "The KVM device")->capture_default_str();
  app.add_option("--json", json_path, "Also write every sample to this file as JSON");
  CLI11_PARSE(app, argc, argv);
  for (size_t i = 1; i < steps.size(); ++i) {
    if (steps[i] < steps[i - 1]) {
      std::fprintf(stderr, "thaw_bench_fault_fanout: --vms must be ascending\n");
      return 2;
    }
  }

  thaw::UniqueFd kvm(::open(kvm_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!kvm) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: cannot open %s: %s\n", kvm_path.c_str(), std::strerror(errno));
    return 3;
  }
  // The shared memory file, in the page cache: the snapshot's memory file.
  const size_t file_bytes = std::max(kSlotBytes, pages * kPage);
  thaw::UniqueFd file(::memfd_create("thaw-fanout", MFD_CLOEXEC));
  if (!file || ::ftruncate(file.get(), static_cast<off_t>(file_bytes)) != 0) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: memfd of %zu bytes: %s\n", file_bytes, std::strerror(errno));
    return 1;
  }
  std::vector<char> fill(file_bytes, 0x5a);
  if (::pwrite(file.get(), fill.data(), fill.size(), 0) != static_cast<ssize_t>(fill.size())) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: filling the memfd: %s\n", std::strerror(errno));
    return 1;
  }

  thaw::bench::JsonReport report("fault_fanout");
  std::vector<HeldVm> vms;
  std::printf("%6s | write fault, us per page: %7s %7s %7s | MADV_DONTNEED of %zu pages, ms: %7s %7s %7s\n", "VMs",
              "min", "p50", "p99", pages, "min", "p50", "p99");
  double base_fault_us = 0;
  for (size_t target : steps) {
    while (vms.size() < target) {
      if (!add_vm(kvm.get(), file.get(), vms)) return 1;
    }
    std::vector<double> fault_us, dontneed_ms;
    for (size_t i = 0; i < runs; ++i) {
      ProbeSample sample;
      if (!probe(file.get(), pages, sample)) return 1;
      fault_us.push_back(sample.fault_us);
      dontneed_ms.push_back(sample.dontneed_ms);
    }
    auto f = thaw::summarize_samples(fault_us);
    auto d = thaw::summarize_samples(dontneed_ms);
    if (target == steps.front()) base_fault_us = f.median_ms;
    std::printf("%6zu | %33.2f %7.2f %7.2f | %33.3f %7.3f %7.3f", target, f.min_ms, f.median_ms, f.p99_ms, d.min_ms,
                d.median_ms, d.p99_ms);
    if (base_fault_us > 0) std::printf("  (fault x%.1f)", f.median_ms / base_fault_us);
    std::printf("\n");
    // Rows in ms, as every report's; the fault row is per page.
    std::vector<double> fault_ms;
    for (double us : fault_us) fault_ms.push_back(us / 1000.0);
    report.samples("write fault per page with " + std::to_string(target) + " VMs", fault_ms);
    report.samples("MADV_DONTNEED of " + std::to_string(pages) + " pages with " + std::to_string(target) + " VMs",
                   dontneed_ms);
  }
  for (auto& vm : vms) {
    vm.fd.reset();
    ::munmap(vm.memory, kSlotBytes);
  }
  return report.write(json_path) ? 0 : 1;
}
