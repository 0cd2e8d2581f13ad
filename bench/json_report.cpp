#include "bench/json_report.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>

#include "vmm/kvm/kvm_system.h"

namespace thaw::bench {

nlohmann::json summary_json(const SampleSummary& s) {
  return {{"min_ms", s.min_ms}, {"median_ms", s.median_ms}, {"p99_ms", s.p99_ms}, {"runs", s.runs}};
}

nlohmann::json samples_json(const std::vector<double>& samples_ms) {
  auto out = summary_json(summarize_samples(samples_ms));
  out["samples_ms"] = samples_ms;
  return out;
}

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

// The source tree's commit, with "+dirty" when it has changes; "unknown"
// where the tree is gone or git is missing.
std::string source_commit() {
  std::string command = std::string("git -C '") + THAW_SOURCE_DIR +
                        "' describe --always --dirty=+dirty --abbrev=12 2>/dev/null";
  std::array<char, 128> buf{};
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    while (std::fgets(buf.data(), buf.size(), pipe)) out += buf.data();
    ::pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

}  // namespace

std::map<std::string, double> host_meminfo_kib() {
  std::ifstream in("/proc/meminfo");
  std::map<std::string, double> kib;
  std::string key;
  double value = 0;
  std::string unit;
  while (in >> key >> value) {
    key.pop_back();  // the ':'
    kib[key] = value;
    std::getline(in, unit);
  }
  return kib;
}

nlohmann::json environment_json() {
  utsname u{};
  ::uname(&u);
  std::array<char, 32> when{};
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(when.data(), when.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return {{"kernel", std::string(u.sysname) + " " + u.release},
          {"machine", u.machine},
          {"cpu_model", cpu_model()},
          {"online_cpus", ::sysconf(_SC_NPROCESSORS_ONLN)},
          // The module behind /dev/kvm, as `thaw doctor` names it.
          {"kvm_backend", std::filesystem::exists("/dev/kvm") ? vmm::kvm::backend_name(vmm::kvm::detect_backend())
                                                                : "none"},
          {"thaw_version", THAW_VERSION},
          {"thaw_commit", source_commit()},
          {"date_utc", when.data()}};
}

JsonReport::JsonReport(std::string benchmark) {
  root_["benchmark"] = std::move(benchmark);
  root_["environment"] = environment_json();
}

void JsonReport::samples(const std::string& name, const std::vector<double>& samples_ms) {
  root_["rows"][name] = samples_json(samples_ms);
}

void JsonReport::value(const std::string& name, double value) { root_["values"][name] = value; }

bool JsonReport::write(const std::string& path) const {
  if (path.empty()) return true;
  std::ofstream out(path, std::ios::trunc);
  out << root_.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace thaw::bench
