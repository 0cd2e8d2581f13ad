#include "pool/linux_initramfs.h"

#include <sys/stat.h>

#include <cerrno>
#include <fstream>

#include "base/errors.h"
#include "vmm/loader/cpio_archive.h"
#include "vmm/loader/kernel_image.h"
#include "vmm/loader/program_image.h"

namespace thaw::pool {

namespace {

namespace loader = vmm::loader;

// The agent and the program are read whole: bound what a wrong path costs.
constexpr uint64_t kMaxExecutableBytes = 256ull << 20;
constexpr uint32_t kConsoleMajor = 5;
constexpr uint32_t kConsoleMinor = 1;

// The loader's reader: one fd opened without blocking, so a FIFO or other
// special file is refused before any read, and the size is bounded.
std::vector<uint8_t> read_executable(const std::string& path, const char* what) {
  try {
    return loader::read_image_file(path, what, kMaxExecutableBytes);
  } catch (const InputError& e) {
    throw BadArgument(e.what());
  }
}

std::vector<uint8_t> nul_separated(const std::vector<std::string>& strings) {
  std::vector<uint8_t> out;
  for (const auto& s : strings) {
    out.insert(out.end(), s.begin(), s.end());
    out.push_back(0);
  }
  return out;
}

}  // namespace

std::vector<uint8_t> pack_linux_initramfs(const TemplateSpec& spec, const std::string& init_agent) {
  std::vector<uint8_t> out;
  if (!spec.files_dir.empty()) {
    try {
      // A debootstrap tree has device nodes under /dev: left out, since
      // thaw-init mounts devtmpfs there.
      out = loader::pack_cpio_directory(spec.files_dir, loader::kMaxFilesArchiveBytes, loader::SpecialFiles::kSkip);
    } catch (const InputError& e) {
      throw BadArgument("template '" + spec.name + "': root file system: " + e.what());
    }
  }
  // The program's guest path: "/" + its basename, the function runtime's rule.
  const std::string guest_path = loader::guest_program_path(spec.program);
  std::vector<std::string> argv{guest_path};
  argv.insert(argv.end(), spec.args.begin(), spec.args.end());

  std::vector<loader::CpioEntry> entries;
  for (const char* dir : {"dev", "proc", "sys", "tmp", "run", "thaw"}) entries.push_back({dir, S_IFDIR | 0755, {}});
  entries.push_back({"dev/console", S_IFCHR | 0600, {}, kConsoleMajor, kConsoleMinor});
  entries.push_back({"thaw/argv", S_IFREG | 0444, nul_separated(argv)});
  entries.push_back({"thaw/env", S_IFREG | 0444, nul_separated(spec.env)});
  entries.push_back({"init", S_IFREG | 0755, read_executable(init_agent, "the Linux init agent")});
  entries.push_back({guest_path.substr(1), S_IFREG | 0755, read_executable(spec.program, "program")});

  // After the root file system: an entry here replaces one there. Inode
  // numbers apart from the first archive's (counted from 1).
  uint32_t ino = 1u << 24;
  for (const auto& e : entries) loader::append_cpio_entry(out, e, ino++);
  loader::append_cpio_trailer(out);
  return out;
}

std::string write_linux_initramfs(const TemplateSpec& spec, const std::string& init_agent, const std::string& dir) {
  if (init_agent.empty()) {
    throw BadArgument("template '" + spec.name + "': this thaw has no Linux init agent (thaw-init) to boot Linux with");
  }
  auto bytes = pack_linux_initramfs(spec, init_agent);
  std::string path = dir + "/initramfs.cpio";
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) throw SysError("write", errno, path);
  return path;
}

void configure_linux_boot(vmm::VmConfig& config, const TemplateSpec& spec, const std::string& initramfs_path,
                          const std::string& vsock_path) {
  config.kernel_path = spec.kernel;
  config.initrd_path = initramfs_path;
  config.cmdline = kLinuxBaseCmdline;
  if (!spec.cmdline.empty()) config.cmdline += " " + spec.cmdline;
  config.mem_mib = spec.mem_mib;
  config.vcpus = spec.vcpus;
  config.vsock_path = vsock_path;
  config.boot_complete_action = vmm::BootCompleteAction::kPause;
  // Linux calibrates its clocks with the PIT where kvmclock does not tell it.
  config.pit = true;
}

}  // namespace thaw::pool
