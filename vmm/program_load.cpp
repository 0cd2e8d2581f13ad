#include "vmm/program_load.h"

#include "vmm/loader/cpio_archive.h"
#include "vmm/loader/kernel_image.h"
#include "base/errors.h"

namespace thaw::vmm {

namespace {

loader::ProgramImageInput image_input(const ProgramSpec& spec, const ProgramFiles& files) {
  loader::ProgramImageInput in;
  in.elf = files.elf;
  in.name = spec.path;
  in.exe_path = files.guest_path;
  in.args = spec.args;
  in.env = spec.env;
  in.files_archive = files.archive;
  return in;
}

}  // namespace

ProgramFiles read_program_files(const VmConfig& config) {
  if (!config.program) throw std::logic_error("read_program_files without a program");
  const ProgramSpec& spec = *config.program;
  if (spec.path.empty()) throw InputError("no program given (--program)");
  if (!config.initrd_path.empty()) {
    throw InputError("--initrd cannot be combined with a program: put the program's files in a directory and "
                     "pass it as its files instead");
  }
  if (config.mem_mib > (loader::kMaxProgramRamBytes >> 20)) {
    throw InputError("--mem " + std::to_string(config.mem_mib) + " MiB: program guests have at most 3072 MiB (3 GiB)");
  }
  ProgramFiles files;
  files.guest_path = loader::guest_program_path(spec.path);
  files.elf = loader::read_image_file(spec.path, "program");
  if (!spec.files_dir.empty()) files.archive = loader::pack_cpio_directory(spec.files_dir);
  loader::check_program_image(config.mem_mib << 20, image_input(spec, files));
  return files;
}

void validate_program_spec(const VmConfig& config) {
  if (config.program) read_program_files(config);
}

loader::ProgramLayout load_program(GuestMemory& mem, const ProgramSpec& spec, const ProgramFiles& files) {
  return loader::load_program_image(mem, image_input(spec, files));
}

}  // namespace thaw::vmm
