#include "rpc/cli/program_options.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "base/fd_io.h"
#include "base/shipped_file.h"
#include "base/unique_fd.h"
#include "guest/mini/program_abi.h"
#include "vmm/program_load.h"
#include "base/errors.h"

namespace thaw::cli {

std::string default_mini_guest() {
#ifdef THAW_BUILT_MINI_GUEST
  return shipped_file(THAW_BUILT_MINI_GUEST, "thaw-mini.elf");
#else
  return shipped_file("", "thaw-mini.elf");
#endif
}

vmm::VmConfig ProgramOptions::vm_config() const {
  vmm::VmConfig config;
  config.kernel_path = kernel.empty() ? default_mini_guest() : kernel;
  if (config.kernel_path.empty()) {
    throw InputError("no mini guest found beside this thaw (build the thaw_mini target) and no --kernel given");
  }
  config.mem_mib = mem_mib;
  config.cmdline = "thaw.quiet=1";
  config.pit = false;  // the mini guest's timer is the LAPIC's; a PIT costs milliseconds per clone
  vmm::ProgramSpec spec;
  spec.path = path;
  spec.args = args;
  spec.env = env;
  spec.files_dir = files_dir;
  config.program = std::move(spec);
  // Reads and checks the program (static ELF, fits the RAM) and the files
  // directory now, before any KVM object exists.
  vmm::validate_program_spec(config);
  return config;
}

void add_program_options(CLI::App& cmd, ProgramOptions& opt, bool program_required) {
  add_program_flags(cmd, opt, program_required);
  cmd.add_option("--mem", opt.mem_mib, "Guest RAM in MiB")->capture_default_str();
  cmd.add_option("--kernel", opt.kernel, "The guest kernel that hosts the program (default: the mini guest)");
}

void add_program_flags(CLI::App& cmd, ProgramOptions& opt, bool program_required) {
  auto* program = cmd.add_option("--program", opt.path,
                                 "The function: a static x86-64 Linux executable (ET_EXEC or static-PIE)");
  if (program_required) program->required();
  cmd.add_option("--arg", opt.args,
                 "An argument for the program (repeat for more; argv[0] is the program's name). Dash-led "
                 "values work: --arg -c or --arg=-c");
  cmd.add_option("--env", opt.env, "K=V in the program's environment (repeat for more; overrides the defaults)");
  cmd.add_option("--files", opt.files_dir, "A directory the program sees read-only at / (packed as cpio)");
}

std::vector<uint8_t> read_payload(const std::string& text, const std::string& file) {
  if (file.empty()) return {text.begin(), text.end()};
  UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) throw InputError("--payload-file '" + file + "': cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    throw InputError("--payload-file '" + file + "': not a regular file");
  }
  if (static_cast<uint64_t>(st.st_size) > MAILBOX_STDIN_CAPACITY) {
    throw InputError("--payload-file '" + file + "': " + std::to_string(st.st_size) + " bytes; a request is at most " +
                     std::to_string(MAILBOX_STDIN_CAPACITY) + " bytes");
  }
  std::vector<uint8_t> bytes(static_cast<size_t>(st.st_size));
  auto read = read_until_full(fd.get(), bytes);
  if (read.error != 0) {
    throw InputError("--payload-file '" + file + "': read failed: " + std::strerror(read.error));
  }
  if (read.bytes < bytes.size()) throw InputError("--payload-file '" + file + "': shrank while it was read");
  return bytes;
}

std::vector<std::string> cli_arguments_joining_dash_values(int argc, char** argv) {
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if ((word == "--arg" || word == "--env") && i + 1 < argc) {
      args.push_back(word + "=" + argv[++i]);
    } else {
      args.push_back(std::move(word));
    }
  }
  std::reverse(args.begin(), args.end());
  return args;
}

SnapshotScratch::SnapshotScratch() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/thaw-run-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) throw_errno("mkdtemp", pattern);
  path_ = pattern;
}

SnapshotScratch::~SnapshotScratch() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace thaw::cli
