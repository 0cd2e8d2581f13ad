#include "snapshot/host_fingerprint.h"

#include <fstream>

namespace thaw::snapshot {

namespace {

std::string trim(const std::string& s) {
  auto begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return {};
  auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::string cpu_model_name() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    auto colon = line.find(':');
    if (colon != std::string::npos && trim(line.substr(0, colon)) == "model name") {
      return trim(line.substr(colon + 1));
    }
  }
  return {};
}

}  // namespace

HostFingerprint current_host_fingerprint(const std::string& kvm_backend) {
  // Read once: every restore checks the fingerprint, and making
  // /proc/cpuinfo's text costs the kernel ~20 us here (more with more CPUs).
  static const std::string model = cpu_model_name();
  return HostFingerprint{.cpu_model = model, .kvm_backend = kvm_backend, .thaw_version = THAW_VERSION};
}

std::string check_host_compatible(const HostFingerprint& saved, const HostFingerprint& here) {
  std::string why;
  if (saved.cpu_model != here.cpu_model) {
    why = "the snapshot was taken on CPU \"" + saved.cpu_model + "\", this host has \"" + here.cpu_model + "\"";
  }
  if (saved.kvm_backend != here.kvm_backend) {
    if (!why.empty()) why += "; ";
    why += "the snapshot was taken with KVM backend " + saved.kvm_backend + ", this host runs " + here.kvm_backend;
  }
  return why;
}

}  // namespace thaw::snapshot
