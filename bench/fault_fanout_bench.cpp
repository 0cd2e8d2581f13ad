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
// write faults (copy on write from the page cache) to pages not yet mapped
// and to pages an earlier read mapped, then MADV_DONTNEED of the dirtied
// pages one page a call and the rest in one call (a reset in place makes
// one call per run of dirty pages). Prints min, median and
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
  double first_write_us = 0;       // a write to a page not yet mapped (copy from the page cache), per page
  double write_after_read_us = 0;  // a write to a page mapped read-only by an earlier read, per page
  double dontneed_page_us = 0;     // MADV_DONTNEED of one dirty page, per call
  double dontneed_all_ms = 0;      // MADV_DONTNEED of the probe's other dirty pages in one call
};

double us_since(Clock::time_point start) { return thaw::to_ms(Clock::now() - start) * 1000.0; }

// Maps `pages` (at least 4) of `file` privately. The first half is written
// untouched; the second half read, then written (KVM's guests fault like
// that: a read maps the page cache page, the first write copies it). Then a
// quarter of the pages are dropped one call each, the rest in one call.
bool probe(int file, size_t pages, ProbeSample& out) {
  const size_t bytes = pages * kPage;
  auto* p = static_cast<volatile char*>(::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE, file, 0));
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "thaw_bench_fault_fanout: mmap of the probe: %s\n", std::strerror(errno));
    return false;
  }
  const size_t half = pages / 2;
  auto start = Clock::now();
  for (size_t i = 0; i < half; ++i) p[i * kPage] = static_cast<char>(i);
  out.first_write_us = us_since(start) / static_cast<double>(half);
  unsigned sum = 0;
  for (size_t i = half; i < pages; ++i) sum += static_cast<unsigned char>(p[i * kPage]);
  start = Clock::now();
  for (size_t i = half; i < pages; ++i) p[i * kPage] = static_cast<char>(i + sum);
  out.write_after_read_us = us_since(start) / static_cast<double>(pages - half);
  char* base = const_cast<char*>(p);
  const size_t singles = pages / 4;
  start = Clock::now();
  for (size_t i = 0; i < singles; ++i) ::madvise(base + i * kPage, kPage, MADV_DONTNEED);
  out.dontneed_page_us = us_since(start) / static_cast<double>(singles);
  start = Clock::now();
  ::madvise(base + singles * kPage, bytes - singles * kPage, MADV_DONTNEED);
  out.dontneed_all_ms = us_since(start) / 1000.0;
  ::munmap(base, bytes);
  return true;
}

// "min / p50 / p99" of `samples`, and their JSON row in milliseconds.
std::string cell(thaw::bench::JsonReport& report, const std::string& row, const std::vector<double>& samples,
                 double to_ms) {
  std::vector<double> ms;
  for (double v : samples) ms.push_back(v * to_ms);
  report.samples(row, ms);
  auto s = thaw::summarize_samples(samples);
  char text[64];
  std::snprintf(text, sizeof text, "%.2f / %.2f / %.2f", s.min_ms, s.median_ms, s.p99_ms);
  return text;
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
      ->check(CLI::Range(8, 1 << 18));
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
  std::printf("min / median / p99 over %zu probes of %zu pages each\n", runs, pages);
  std::printf("%6s | %-24s | %-24s | %-24s | %-24s\n", "VMs", "first write, us a page", "write after read, us",
              "DONTNEED 1 page, us", "DONTNEED the rest, ms");
  for (size_t target : steps) {
    while (vms.size() < target) {
      if (!add_vm(kvm.get(), file.get(), vms)) return 1;
    }
    std::vector<double> first_write, write_after_read, dontneed_page, dontneed_all;
    for (size_t i = 0; i < runs; ++i) {
      ProbeSample sample;
      if (!probe(file.get(), pages, sample)) return 1;
      first_write.push_back(sample.first_write_us);
      write_after_read.push_back(sample.write_after_read_us);
      dontneed_page.push_back(sample.dontneed_page_us);
      dontneed_all.push_back(sample.dontneed_all_ms);
    }
    const std::string with = " with " + std::to_string(target) + " VMs";
    std::printf("%6zu | %-24s | %-24s | %-24s | %-24s\n", target,
                cell(report, "first write fault per page" + with, first_write, 1e-3).c_str(),
                cell(report, "write after read fault per page" + with, write_after_read, 1e-3).c_str(),
                cell(report, "MADV_DONTNEED of one page" + with, dontneed_page, 1e-3).c_str(),
                cell(report, "MADV_DONTNEED of the rest in one call" + with, dontneed_all, 1.0).c_str());
  }
  for (auto& vm : vms) {
    vm.fd.reset();
    ::munmap(vm.memory, kSlotBytes);
  }
  return report.write(json_path) ? 0 : 1;
}
