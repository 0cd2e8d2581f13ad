#include "bench/qemu_restore.h"

#include <elf.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "bench/process_timer.h"
#include "bench/qmp_client.h"

namespace thaw::bench {

namespace {

using namespace std::chrono_literals;

double ms_between(SteadyClock::time_point a, SteadyClock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// The LAPIC timer period the mini guest programs (guest/mini/README.md):
// initial count 125000, divide by 16, KVM's 1 GHz timer clock.
constexpr double kTickMs = 2.0;

std::string mini_cmdline(const RestoreComparisonOptions& o) {
  return "console=ttyS0 thaw.fn_bytes=" + std::to_string(o.fn_bytes) + " thaw.after=ticks:" + std::to_string(o.ticks);
}

std::string ticks_line(const RestoreComparisonOptions& o) { return "thaw-mini: ticks " + std::to_string(o.ticks); }

// The same machine as the cold-boot bench's QEMU rows.
std::vector<std::string> qemu_machine(const std::string& qemu) {
  return {qemu,          "-M",         "microvm,x-option-roms=off,rtc=off,pit=off,pic=off,isa-serial=on",
          "-enable-kvm", "-cpu",       "host",
          "-m",          "128",        "-smp",
          "1",           "-nodefaults", "-no-user-config",
          "-display",    "none",       "-no-reboot",
          "-device",     "isa-debug-exit,iobase=0xf4,iosize=4"};
}

std::string read_file(const std::string& path, size_t max_tail = 2000) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > max_tail) s = "..." + s.substr(s.size() - max_tail);
  return s;
}

UniqueFd open_for_writing(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
  return fd;
}

// Address of a symbol in the guest ELF's symbol table (nullopt when the
// image is stripped or has no such symbol). Used to read the guest's tick
// counter from QEMU at the moment it was stopped.
std::optional<uint64_t> elf_symbol(const std::string& path, const std::string& name) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto fits = [&](uint64_t off, uint64_t len) { return off <= image.size() && len <= image.size() - off; };
  if (!fits(0, sizeof(Elf64_Ehdr))) return std::nullopt;
  Elf64_Ehdr eh;
  std::memcpy(&eh, image.data(), sizeof(eh));
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
      eh.e_shentsize != sizeof(Elf64_Shdr) || !fits(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr))) {
    return std::nullopt;
  }
  auto section = [&](size_t i) {
    Elf64_Shdr sh;
    std::memcpy(&sh, image.data() + eh.e_shoff + i * sizeof(Elf64_Shdr), sizeof(sh));
    return sh;
  };
  for (size_t i = 0; i < eh.e_shnum; ++i) {
    Elf64_Shdr symtab = section(i);
    if (symtab.sh_type != SHT_SYMTAB || symtab.sh_link >= eh.e_shnum || !fits(symtab.sh_offset, symtab.sh_size)) continue;
    Elf64_Shdr strtab = section(symtab.sh_link);
    if (!fits(strtab.sh_offset, strtab.sh_size)) continue;
    for (uint64_t off = 0; off + sizeof(Elf64_Sym) <= symtab.sh_size; off += sizeof(Elf64_Sym)) {
      Elf64_Sym sym;
      std::memcpy(&sym, image.data() + symtab.sh_offset + off, sizeof(sym));
      if (sym.st_name >= strtab.sh_size) continue;
      const char* s = image.data() + strtab.sh_offset + sym.st_name;
      size_t max = strtab.sh_size - sym.st_name;
      if (strnlen(s, max) == name.size() && name.compare(0, name.size(), s, name.size()) == 0) return sym.st_value;
    }
  }
  return std::nullopt;
}

// A fresh directory under /tmp, removed (with its contents) at the end.
class TempDir {
 public:
  explicit TempDir(std::string path) {
    if (path.empty()) {
      char tmpl[] = "/tmp/thaw-qemu-restore-XXXXXX";
      if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
      path_ = tmpl;
      owned_ = true;
    } else {
      std::filesystem::create_directories(path);
      path_ = path;
    }
  }
  ~TempDir() {
    std::error_code ec;
    if (owned_) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  bool owned_ = false;
};

// ------------------------------------------------------------------ QEMU side

struct QemuSnapshot {
  std::string state_file;
  uint64_t state_bytes = 0;
  std::optional<uint64_t> ticks_at_stop;  // guest's timer_ticks when QMP stop returned
  double ready_to_stopped_ms = 0;         // `ready` read from the serial pipe -> stop returned
  double migrate_ms = 0;                  // migrate issued -> query-migrate says completed
  unsigned attempts = 0;
};

class GuestFinishedEarly : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// One attempt: boot paused (-S), connect QMP, cont, wait for `ready` on the
// serial pipe, stop, migrate to `state_file`, quit.
QemuSnapshot qemu_snapshot_once(const RestoreComparisonOptions& o, const std::string& dir) {
  QemuSnapshot snap;
  snap.state_file = dir + "/qemu-state";
  std::string sock = dir + "/qmp.sock";
  std::string stderr_path = dir + "/qemu-snapshot.stderr";
  std::filesystem::remove(sock);
  std::filesystem::remove(snap.state_file);

  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
  UniqueFd serial_read(pipefd[0]), serial_write(pipefd[1]);
  // The child's end must block like a normal stdout.
  ::fcntl(serial_write.get(), F_SETFL, 0);
  UniqueFd err = open_for_writing(stderr_path);

  auto argv = qemu_machine(o.qemu);
  // -S: paused until QMP is connected, so `stop` follows `ready` closely.
  // store-global-state=off: the stream then does not carry the source's run
  // state ("paused", after our stop), so the restoring QEMU starts the guest
  // by itself once the stream is loaded instead of staying paused.
  for (const char* a : {"-S", "-global", "migration.store-global-state=off", "-serial", "stdio"}) argv.emplace_back(a);
  argv.insert(argv.end(), {"-qmp", "unix:" + sock + ",server=on,wait=off", "-kernel", o.kernel, "-append", mini_cmdline(o)});
  ChildProcess qemu = ChildProcess::spawn(argv, {-1, serial_write.get(), err.get()});
  serial_write.reset();

  std::string serial;
  auto fail = [&](const std::string& what) -> std::runtime_error {
    std::string status = qemu.running() ? "still running (killed)" : describe_status(*qemu.wait_until({}));
    qemu.kill_and_reap();
    return std::runtime_error("QEMU snapshot: " + what + "\n  QEMU: " + status + "\n  serial so far:\n" + serial +
                              "\n  QEMU stderr:\n" + read_file(stderr_path));
  };
  // Reads serial output until `needle` appears; false when QEMU exited or the deadline passed.
  auto read_serial_until = [&](const std::string& needle, SteadyClock::time_point deadline) {
    while (serial.find(needle) == std::string::npos) {
      pollfd fds[2] = {{serial_read.get(), POLLIN, 0}, {qemu.pidfd(), POLLIN, 0}};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now()).count();
      if (left < 0) return false;
      int r = ::poll(fds, 2, static_cast<int>(left) + 1);
      if (r < 0 && errno != EINTR) throw std::runtime_error(std::string("poll: ") + std::strerror(errno));
      if (r <= 0) continue;
      if (fds[0].revents & (POLLIN | POLLHUP)) {
        char buf[4096];
        ssize_t n = ::read(serial_read.get(), buf, sizeof(buf));
        if (n > 0) {
          serial.append(buf, static_cast<size_t>(n));
          continue;
        }
        if (n == 0) return serial.find(needle) != std::string::npos;  // EOF: QEMU closed stdout
      }
      if (fds[1].revents & POLLIN) {
        // Exited: take what is left in the pipe, then decide.
        char buf[4096];
        ssize_t n;
        while ((n = ::read(serial_read.get(), buf, sizeof(buf))) > 0) serial.append(buf, static_cast<size_t>(n));
        return serial.find(needle) != std::string::npos;
      }
    }
    return true;
  };

  QmpClient qmp = [&] {
    try {
      return QmpClient::connect(sock, SteadyClock::now() + 10s, [&] { return qemu.running(); });
    } catch (const std::exception& e) {
      throw fail(e.what());
    }
  }();
  try {
    qmp.execute("cont");
    if (!read_serial_until("thaw-mini: ready\n", SteadyClock::now() + 30s)) {
      throw fail("the guest did not print `thaw-mini: ready`");
    }
    auto ready_at = SteadyClock::now();
    qmp.execute("stop");
    snap.ready_to_stopped_ms = ms_between(ready_at, SteadyClock::now());
    qmp.wait_event("STOP", 5s);
    // Whatever else the guest printed by now, without waiting.
    char buf[4096];
    ssize_t n;
    while ((n = ::read(serial_read.get(), buf, sizeof(buf))) > 0) serial.append(buf, static_cast<size_t>(n));
    if (serial.find("thaw-mini: ticks") != std::string::npos || !qemu.running()) {
      throw GuestFinishedEarly("the guest finished its ticks before QMP stop took effect");
    }
    if (auto addr = elf_symbol(o.kernel, "timer_ticks")) {
      char cmd[64];
      std::snprintf(cmd, sizeof(cmd), "xp /1gx 0x%" PRIx64, *addr);
      std::string out = qmp.execute("human-monitor-command", {{"command-line", cmd}}).get<std::string>();
      auto colon = out.find(": ");
      if (colon != std::string::npos) snap.ticks_at_stop = std::stoull(out.substr(colon + 2), nullptr, 0);
    }
    if (snap.ticks_at_stop && *snap.ticks_at_stop >= o.ticks) {
      throw GuestFinishedEarly("the guest had handled all its ticks before QMP stop took effect");
    }

    auto migrate_at = SteadyClock::now();
    qmp.execute("migrate", {{"uri", "exec:cat > '" + snap.state_file + "'"}});
    auto deadline = SteadyClock::now() + 60s;
    while (true) {
      auto info = qmp.execute("query-migrate");
      std::string status = info.value("status", std::string());
      if (status == "completed") break;
      if (status == "failed" || status == "cancelled") {
        throw fail("migration " + status + ": " + info.value("error-desc", std::string("(no error-desc)")));
      }
      if (SteadyClock::now() > deadline) throw fail("migration not completed after 60 s: " + info.dump());
      std::this_thread::sleep_for(1ms);
    }
    snap.migrate_ms = ms_between(migrate_at, SteadyClock::now());
    qmp.send("quit");
  } catch (const QmpError& e) {
    throw fail(e.what());
  }
  auto status = qemu.wait_until(SteadyClock::now() + 10s);
  if (!status) throw fail("QEMU did not exit after QMP quit");
  if (*status != 0) throw fail("QEMU exited with " + describe_status(*status) + " after QMP quit");
  std::error_code ec;
  snap.state_bytes = std::filesystem::file_size(snap.state_file, ec);
  if (ec || snap.state_bytes == 0) throw fail("migration completed but " + snap.state_file + " is empty or missing");
  return snap;
}

QemuSnapshot qemu_snapshot(const RestoreComparisonOptions& o, const std::string& dir) {
  constexpr unsigned kAttempts = 5;
  for (unsigned attempt = 1;; ++attempt) {
    try {
      auto snap = qemu_snapshot_once(o, dir);
      snap.attempts = attempt;
      return snap;
    } catch (const GuestFinishedEarly& e) {
      if (attempt == kAttempts) {
        throw std::runtime_error(std::string("QEMU snapshot: ") + e.what() + " in all " + std::to_string(kAttempts) +
                                 " attempts; use more ticks");
      }
      std::fprintf(stderr, "  QEMU snapshot attempt %u: %s; again\n", attempt, e.what());
    }
  }
}

std::vector<std::string> qemu_restore_argv(const RestoreComparisonOptions& o, const std::string& state_file,
                                           const std::string& serial) {
  auto argv = qemu_machine(o.qemu);
  argv.insert(argv.end(), {"-serial", serial, "-kernel", o.kernel, "-append", mini_cmdline(o), "-incoming",
                           "exec:cat '" + state_file + "'"});
  return argv;
}

struct TimedRuns {
  std::vector<double> samples_ms;
  size_t failures = 0;
};

// QEMU restores, each a whole process: spawn -> migration stream loaded ->
// guest runs its remaining ticks and writes 0 to 0xf4 -> QEMU exits with 1.
TimedRuns qemu_restores(const RestoreComparisonOptions& o, const QemuSnapshot& snap, const std::string& dir) {
  // Untimed check run (also the warm-up): the guest must print its ticks line.
  std::string serial_path = dir + "/qemu-restore.serial", stderr_path = dir + "/qemu-restore.stderr";
  {
    UniqueFd err = open_for_writing(stderr_path);
    auto child = ChildProcess::spawn(qemu_restore_argv(o, snap.state_file, "file:" + serial_path), {-1, -1, err.get()});
    auto status = child.wait_until(SteadyClock::now() + 30s);
    std::string serial = read_file(serial_path);
    if (!status || *status != 1 || serial.find(ticks_line(o)) == std::string::npos) {
      throw std::runtime_error("QEMU restore (-incoming exec:) check run: " +
                               (status ? describe_status(*status) : std::string("no exit within 30 s (killed)")) +
                               ", expected exit 1 and `" + ticks_line(o) + "`\n  serial:\n" + serial +
                               "\n  QEMU stderr:\n" + read_file(stderr_path));
    }
  }
  TimedRuns runs;
  auto argv = qemu_restore_argv(o, snap.state_file, "null");
  for (size_t i = 0; i < o.runs; ++i) {
    auto start = SteadyClock::now();
    auto child = ChildProcess::spawn(argv);
    auto status = child.wait_until(start + 30s);
    double ms = ms_between(start, SteadyClock::now());
    if (!status || *status != 1) {
      if (++runs.failures <= 3) {
        std::fprintf(stderr, "  QEMU restore run %zu: %s, expected exit 1\n", i,
                     status ? describe_status(*status).c_str() : "no exit within 30 s (killed)");
      }
      continue;
    }
    runs.samples_ms.push_back(ms);
    std::fprintf(stderr, "\r  QEMU restore -> guest exit %3zu/%zu", i + 1, o.runs);
  }
  std::fprintf(stderr, "\n");
  return runs;
}

// ------------------------------------------------------------------ thaw side

void thaw_snapshot(const RestoreComparisonOptions& o, const std::string& dir) {
  vmm::VmConfig config;
  config.kernel_path = o.kernel;
  config.cmdline = mini_cmdline(o);
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  auto vm = vmm::Vm::create(config);
  snapshot::boot_and_snapshot(*vm, dir, std::chrono::seconds(60));
}

// thaw restores in this process: restore_vm -> start -> the guest's exit
// (StopReason::kGuestExit). Clones go to `dispose` (destroyed off the clock).
TimedRuns thaw_restores(const RestoreComparisonOptions& o, const std::string& dir, const CloneDisposer& dispose) {
  auto loaded = snapshot::read_snapshot_dir(dir);
  {  // Untimed check run (also the warm-up), with the console captured.
    std::mutex mutex;
    std::string console;
    snapshot::RestoreOptions options;
    options.console = [&](std::span<const char> bytes) {
      std::lock_guard lock(mutex);
      console.append(bytes.data(), bytes.size());
    };
    auto clone = snapshot::restore_vm(loaded, options);
    clone.vm->start();
    clone.vm->wait(10s);
    auto reason = clone.vm->stop_reason();
    std::string detail = clone.vm->stop_detail();
    dispose(std::move(clone));
    std::lock_guard lock(mutex);
    if (reason != vmm::StopReason::kGuestExit || console.find(ticks_line(o)) == std::string::npos) {
      throw std::runtime_error(std::string("thaw restore check run: stopped with ") + vmm::stop_reason_name(reason) +
                               " " + detail + ", expected guest-exit and `" + ticks_line(o) + "`\n  console:\n" +
                               console);
    }
  }
  TimedRuns runs;
  // As a pool keeps them, for all its restores.
  auto kvm = vmm::KvmHost::open();
  auto spawners = vmm::VmThreadSpawners::start();
  for (size_t i = 0; i < o.runs; ++i) {
    snapshot::RestoreOptions options;  // private memory, console dropped
    options.kvm = kvm;
    options.thread_spawners = spawners;
    auto requested = SteadyClock::now();
    auto clone = snapshot::restore_vm(loaded, options);
    clone.vm->start();
    clone.vm->wait(10s);
    double ms = ms_between(requested, SteadyClock::now());
    auto reason = clone.vm->stop_reason();
    dispose(std::move(clone));
    if (reason != vmm::StopReason::kGuestExit) {
      if (++runs.failures <= 3) {
        std::fprintf(stderr, "  thaw restore run %zu: stopped with %s\n", i, vmm::stop_reason_name(reason));
      }
      continue;
    }
    runs.samples_ms.push_back(ms);
  }
  return runs;
}

void print_row(const std::string& name, const TimedRuns& r) {
  auto s = summarize(r.samples_ms);
  if (s.runs == 0) {
    std::printf("  %-48s   (all %zu runs failed)\n", name.c_str(), r.failures);
    return;
  }
  std::printf("  %-48s %9.3f %9.3f %9.3f   %zu runs%s\n", name.c_str(), s.min_ms, s.median_ms, s.p99_ms, s.runs,
              r.failures ? " (some failed)" : "");
}

}  // namespace

bool run_qemu_restore_comparison(const RestoreComparisonOptions& o, const CloneDisposer& dispose, JsonReport* report) {
  TempDir dir(o.work_dir);
  std::fprintf(stderr, "QEMU vs thaw restore: mini guest, `%s`, %zu runs each (work dir %s)\n", mini_cmdline(o).c_str(),
               o.runs, dir.path().c_str());
  std::printf("\nRestore -> guest answered, QEMU vs thaw: same mini guest, same remaining work\n");
  std::printf("  (thaw.after=ticks:%u: wait for %u LAPIC timer tick%s of %.0f ms after the snapshot point, print a line,\n"
              "  write 0 to port 0xf4), milliseconds\n",
              o.ticks, o.ticks, o.ticks == 1 ? "" : "s", kTickMs);

  std::optional<QemuSnapshot> qsnap;
  TimedRuns qemu_runs;
  std::string qemu_error;
  try {
    qsnap = qemu_snapshot(o, dir.path());
    qemu_runs = qemu_restores(o, *qsnap, dir.path());
  } catch (const std::exception& e) {
    qemu_error = e.what();
  }

  TimedRuns thaw_runs;
  std::string thaw_error;
  try {
    thaw_snapshot(o, dir.path() + "/thaw-snapshot");
    thaw_runs = thaw_restores(o, dir.path() + "/thaw-snapshot", dispose);
  } catch (const std::exception& e) {
    thaw_error = e.what();
  }

  std::printf("  %-48s %9s %9s %9s\n", "", "min", "median", "p99");
  if (qemu_error.empty()) {
    print_row("QEMU -incoming exec:cat (whole process)", qemu_runs);
  } else {
    std::printf("  QEMU: FAILED: %s\n", qemu_error.c_str());
  }
  if (thaw_error.empty()) {
    print_row("thaw restore_vm, private memory (in process)", thaw_runs);
  } else {
    std::printf("  thaw: FAILED: %s\n", thaw_error.c_str());
  }
  auto q = summarize(qemu_runs.samples_ms), t = summarize(thaw_runs.samples_ms);
  if (report) {
    if (q.runs > 0) report->samples("QEMU -incoming -> guest answered (whole process)", qemu_runs.samples_ms);
    if (t.runs > 0) report->samples("thaw restore -> guest answered (in process)", thaw_runs.samples_ms);
  }
  if (q.runs > 0 && t.runs > 0) {
    std::printf("  %-48s %8.1fx %8.1fx\n", "QEMU / thaw", q.min_ms / t.min_ms, q.median_ms / t.median_ms);
    if (report) {
      report->value("qemu_over_thaw_restore_min_ratio", q.min_ms / t.min_ms);
      report->value("qemu_over_thaw_restore_median_ratio", q.median_ms / t.median_ms);
    }
  }
  std::printf("  QEMU: a whole process, exec -> migration stream loaded (cat of a %.1f MiB file) -> guest done -> exit 1.\n",
              qsnap ? static_cast<double>(qsnap->state_bytes) / (1 << 20) : 0.0);
  std::printf("  thaw: in process, restore request -> guest done (what a thaw pool does; clones destroyed off the clock).\n");
  std::printf("  Both include the guest's remaining work: %u tick%s, about %.0f-%.0f ms of every figure.\n", o.ticks,
              o.ticks == 1 ? "" : "s", (o.ticks - 1) * kTickMs, o.ticks * kTickMs);
  if (qsnap) {
    std::string ticks = qsnap->ticks_at_stop ? std::to_string(*qsnap->ticks_at_stop) : std::string("unknown");
    std::printf("  QEMU was stopped %.2f ms after `ready` was read, with %s of %u ticks already handled (thaw: 0);\n"
                "  ticks spent before the stop can only shorten QEMU's remaining work. QEMU's snapshot point is\n"
                "  just after `ready\\n` reached the host, at most a few instructions before thaw's (the boot-complete\n"
                "  write). Snapshot attempts: %u, migrate to file: %.1f ms.\n",
                qsnap->ready_to_stopped_ms, ticks.c_str(), o.ticks, qsnap->attempts, qsnap->migrate_ms);
  }
  return qemu_error.empty() && thaw_error.empty() && qemu_runs.failures == 0 && thaw_runs.failures == 0;
}

}  // namespace thaw::bench
