#include "vmm/kvm_host_check.h"

#include <fcntl.h>
#include <grp.h>
#include <sys/klog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace thaw::vmm {

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::vector<std::string> lines;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The whole kernel ring buffer, or nothing where the host refuses it
// (kernel.dmesg_restrict without CAP_SYSLOG).
std::vector<std::string> kernel_log_lines() {
  int size = ::klogctl(10 /* SYSLOG_ACTION_SIZE_BUFFER */, nullptr, 0);
  if (size <= 0) return {};
  std::string buf(static_cast<size_t>(size), '\0');
  int got = ::klogctl(3 /* SYSLOG_ACTION_READ_ALL */, buf.data(), size);
  if (got <= 0) return {};
  buf.resize(static_cast<size_t>(got));
  std::vector<std::string> lines;
  std::istringstream in(buf);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool user_in_group(gid_t gid) {
  if (::geteuid() == 0 || ::getegid() == gid) return true;
  int n = ::getgroups(0, nullptr);
  if (n <= 0) return false;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  n = ::getgroups(n, groups.data());
  return n > 0 && std::find(groups.begin(), groups.begin() + n, gid) != groups.begin() + n;
}

}  // namespace

KvmHostCheck check_kvm_host(const HostPaths& paths) {
  KvmHostCheck c;
  struct stat st {};
  c.device_exists = ::stat(paths.kvm_device.c_str(), &st) == 0;
  if (c.device_exists) {
    if (group* g = ::getgrgid(st.st_gid)) c.device_group = g->gr_name;
    c.in_device_group = user_in_group(st.st_gid);
    int fd = ::open(paths.kvm_device.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0) {
      c.device_usable = true;
      ::close(fd);
    } else {
      c.open_errno = errno;
    }
  }
  for (const auto& line : read_lines(paths.proc_misc)) {
    std::istringstream words(line);
    std::string minor, name;
    if (words >> minor >> name && name == "kvm") c.misc_registered = true;
  }
  for (const char* m : {"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"}) {
    if (::stat((paths.sys_module_dir + "/" + m).c_str(), &st) == 0) c.modules.emplace_back(m);
  }
  for (const auto& line : read_lines(paths.cpuinfo)) {
    if (line.rfind("flags", 0) != 0) continue;
    std::istringstream words(line.substr(line.find(':') == std::string::npos ? 0 : line.find(':') + 1));
    for (std::string w; words >> w;) {
      if (w == "vmx" || w == "svm") c.cpu_virt_flag = w;
    }
    break;  // the first CPU speaks for all
  }
  auto log = paths.read_kernel_log && paths.kernel_log.empty() ? kernel_log_lines() : paths.kernel_log;
  for (const auto& line : log) {
    if (line.find("kvm") == std::string::npos) continue;
    if (line.find("itself a kvm-pvm guest") != std::string::npos) {
      c.is_pvm_guest = true;
      c.kernel_log_reason = line;
    } else if (c.kernel_log_reason.empty() &&
               (line.find("disabled by bios") != std::string::npos ||
                line.find("no hardware support") != std::string::npos ||
                line.find("not binding") != std::string::npos)) {
      c.kernel_log_reason = line;
    }
  }
  return c;
}

std::vector<std::string> KvmHostCheck::explain() const {
  std::vector<std::string> out;
  if (device_usable) return out;
  if (device_exists) {
    out.push_back("/dev/kvm exists but cannot be opened: " + std::string(std::strerror(open_errno)));
    if (open_errno == EACCES || open_errno == EPERM) {
      out.push_back(in_device_group ? "the permissions of /dev/kvm do not let this user read and write it"
                                    : "this user is not in the group '" + device_group +
                                          "' that owns /dev/kvm: add it (usermod -aG " + device_group +
                                          " USER) and log in again");
    }
    return out;
  }
  out.push_back("there is no /dev/kvm device node");
  std::string loaded;
  for (const auto& m : modules) loaded += (loaded.empty() ? "" : ", ") + m;
  out.push_back(modules.empty() ? "no kvm module is loaded" : "kvm modules loaded: " + loaded);
  if (!misc_registered && !modules.empty()) out.push_back("no KVM backend registered the device (/proc/misc has no kvm)");
  if (is_pvm_guest) {
    out.push_back("this kernel is itself a kvm-pvm guest, so kvm_pvm does not bind (nested PVM is not offered)");
  } else if (!kernel_log_reason.empty()) {
    out.push_back("kernel log: " + kernel_log_reason);
  }
  out.push_back(cpu_virt_flag.empty() ? "the CPU shows no vmx or svm flag: no hardware virtualization for kvm_intel/kvm_amd"
                                      : "the CPU has " + cpu_virt_flag + ": load kvm_" +
                                            (cpu_virt_flag == "vmx" ? "intel" : "amd"));
  out.push_back(
      "what to do: run thaw on a host with KVM (bare metal, a cloud instance with nested virtualization, "
      "or a PVM host), or inside a VM whose emulated CPU offers svm or vmx (e.g. QEMU -accel tcg -cpu max, "
      "slow but real). Everything that needs no VM (parsers, snapshot checks, RPC) works without KVM.");
  return out;
}

bool host_kvm_is_pvm() {
  static const bool pvm = [] {
    std::error_code ec;
    return std::filesystem::exists("/sys/module/kvm_pvm", ec);
  }();
  return pvm;
}

}  // namespace thaw::vmm
