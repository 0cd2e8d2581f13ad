// Cold boot, whole process: exec -> guest's boot-complete write -> exit.
// thaw's halt variant and full mini guest, and, when qemu-system-x86_64 is
// installed, the very same PVH ELF files under QEMU microvm in the same run.
#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/json_report.h"
#include "bench/process_timer.h"

namespace {

using thaw::bench::Series;

// QEMU microvm with nothing but what the guest uses; isa-debug-exit at 0xf4
// lets the guest end the process (exit status (code << 1) | 1).
std::vector<std::string> qemu_argv(const std::string& qemu, const std::string& kernel, const std::string& append) {
  std::vector<std::string> argv = {qemu,  "-M", "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
                                   "-enable-kvm", "-cpu", "host", "-m", "128", "-smp", "1", "-nodefaults",
                                   "-no-user-config", "-display", "none", "-no-reboot", "-serial", "null",
                                   "-device", "isa-debug-exit,iobase=0xf4,iosize=4", "-kernel", kernel};
  if (!append.empty()) {
    argv.push_back("-append");
    argv.push_back(append);
  }
  return argv;
}

void print_row(const Series& s) {
  if (s.summary.runs == 0) {
    std::printf("  %-34s   (all %zu runs failed)\n", s.name.c_str(), s.failures);
    return;
  }
  std::printf("  %-34s %9.2f %9.2f %9.2f   %zu runs%s\n", s.name.c_str(), s.summary.min_ms, s.summary.median_ms,
              s.summary.p99_ms, s.summary.runs, s.failures ? " (some failed)" : "");
}

void print_ratio(const Series& thaw, const Series& qemu) {
  if (thaw.summary.runs == 0 || qemu.summary.runs == 0) return;
  std::printf("  %-34s %9.1fx %8.1fx\n", "QEMU / thaw", qemu.summary.min_ms / thaw.summary.min_ms,
              qemu.summary.median_ms / thaw.summary.median_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Cold-boot benchmark: whole-process time from exec to the guest's boot-complete write and exit,\n"
               "for thaw and (when installed) QEMU microvm booting the same ELF files."};
  size_t runs = 30;
  std::string thaw = THAW_CLI, halt = THAW_MINI_HALT_GUEST, mini = THAW_MINI_GUEST;
  bool no_qemu = false;
  app.add_option("--runs", runs, "Timed runs per case (after one warm-up)")->capture_default_str()->check(CLI::Range(1, 100000));
  app.add_option("--thaw", thaw, "thaw binary")->capture_default_str();
  app.add_option("--halt", halt, "Halt-variant guest ELF")->capture_default_str();
  app.add_option("--mini", mini, "Full mini guest ELF")->capture_default_str();
  app.add_flag("--no-qemu", no_qemu, "Skip the QEMU comparison");
  std::string json_path;
  app.add_option("--json", json_path, "Also write every sample and summary to this file as JSON");
  CLI11_PARSE(app, argc, argv);

  std::string qemu = no_qemu ? "" : thaw::bench::find_in_path("qemu-system-x86_64");
  const std::string mini_cmdline = "console=ttyS0 thaw.fn_bytes=65536";
  std::fprintf(stderr, "cold boot: %zu runs per case%s\n", runs,
               qemu.empty() ? " (qemu-system-x86_64 not installed: no comparison)" : "");

  auto thaw_halt = thaw::bench::time_series("thaw, halt variant", {thaw, "boot", "--console", "none", "--kernel", halt},
                                            runs, 0, true);
  auto thaw_mini = thaw::bench::time_series(
      "thaw, mini guest", {thaw, "boot", "--console", "none", "--cmdline", mini_cmdline, "--kernel", mini}, runs, 0, true);
  Series qemu_halt, qemu_mini;
  if (!qemu.empty()) {
    qemu_halt = thaw::bench::time_series("QEMU microvm, halt variant", qemu_argv(qemu, halt, ""), runs, 1, true);
    qemu_mini = thaw::bench::time_series("QEMU microvm, mini guest",
                                         qemu_argv(qemu, mini, mini_cmdline + " thaw.exit_after_ready=1"), runs, 1, true);
  }

  std::printf("\nCold boot, whole process (exec -> boot-complete -> exit), milliseconds\n");
  std::printf("  %-34s %9s %9s %9s\n", "", "min", "median", "p99");
  print_row(thaw_halt);
  if (!qemu.empty()) {
    print_row(qemu_halt);
    print_ratio(thaw_halt, qemu_halt);
  }
  print_row(thaw_mini);
  if (!qemu.empty()) {
    print_row(qemu_mini);
    print_ratio(thaw_mini, qemu_mini);
  }
  thaw::bench::JsonReport report("cold_boot");
  for (const auto* series : {&thaw_halt, &thaw_mini, &qemu_halt, &qemu_mini}) {
    if (!series->name.empty()) report.samples(series->name, series->samples_ms);
  }
  if (qemu_halt.summary.runs > 0 && thaw_halt.summary.runs > 0) {
    report.value("qemu_over_thaw_halt_median", qemu_halt.summary.median_ms / thaw_halt.summary.median_ms);
  }
  if (qemu_mini.summary.runs > 0 && thaw_mini.summary.runs > 0) {
    report.value("qemu_over_thaw_mini_median", qemu_mini.summary.median_ms / thaw_mini.summary.median_ms);
  }
  bool ok = thaw_halt.failures == 0 && thaw_mini.failures == 0 && report.write(json_path);
  return ok ? 0 : 1;
}
