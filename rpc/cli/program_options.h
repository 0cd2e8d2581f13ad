// What `thaw run` (and the program templates) take to describe the user's
// program: the file, its arguments, environment and files, the guest's RAM
// and the kernel that hosts it (the mini guest by default).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "vmm/vm_config.h"

namespace thaw::cli {

struct ProgramOptions {
  std::string path;
  std::vector<std::string> args;
  std::vector<std::string> env;
  std::string files_dir;
  uint64_t mem_mib = 128;
  std::string kernel;  // empty: the built mini guest

  // A VmConfig for this program, its input checked first (program file,
  // files directory, kernel), so bad input is named before /dev/kvm is
  // opened. Throws InputError.
  vmm::VmConfig vm_config() const;
};

void add_program_options(CLI::App& cmd, ProgramOptions& opt, bool program_required);
// Only --program, --arg, --env and --files (`thaw template create` has its
// own --kernel and --mem-mib).
void add_program_flags(CLI::App& cmd, ProgramOptions& opt, bool program_required);

// The mini guest that came with this thaw: the build tree's, or the one
// installed beside the binary (../lib/thaw/thaw-mini.elf). Empty if none.
std::string default_mini_guest();

// `--payload TEXT` or `--payload-file F` (a regular file, at most 1 MiB,
// never a FIFO that would block). Throws InputError.
std::vector<uint8_t> read_payload(const std::string& text, const std::string& file);

// argv[1..] with `--arg -c` joined into `--arg=-c` (and `--env` alike):
// CLI11 takes a dash-led word for a flag, but a program's arguments often
// start with one. In CLI11's order for App::parse(vector&): reversed.
std::vector<std::string> cli_arguments_joining_dash_values(int argc, char** argv);

// A scratch directory for a snapshot (under $TMPDIR), removed with its
// contents when this goes.
class SnapshotScratch {
 public:
  SnapshotScratch();
  ~SnapshotScratch();
  SnapshotScratch(const SnapshotScratch&) = delete;
  SnapshotScratch& operator=(const SnapshotScratch&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace thaw::cli
