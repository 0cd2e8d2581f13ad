#include "vmm/cpuid_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <spdlog/spdlog.h>

namespace thaw::vmm {

namespace {

constexpr char kMagic[8] = {'T', 'H', 'A', 'W', 'C', 'P', 'U', '1'};
constexpr uint32_t kMaxEntries = 256;  // KVM_MAX_CPUID_ENTRIES

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string read_small_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The module's sysfs directory is created anew when it is loaded, so its
// inode and ctime change on every reload. Parameters that shape the CPUID
// answer (e.g. enable_pmu, nested) are load-time only. Reading each
// parameter file instead cost ~0.4 ms, as much as the query it saves.
std::string module_fingerprint(const char* module) {
  std::string dir = std::string("/sys/module/") + module;
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return {};
  return std::string(module) + ":" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_ctime);
}

}  // namespace

std::string default_cpuid_cache_dir() {
  const char* off = std::getenv("THAW_CPUID_CACHE");
  if (off != nullptr && std::string(off) == "0") return {};
  if (const char* dir = std::getenv("THAW_CACHE_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (::geteuid() == 0) return "/run/thaw";
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime != nullptr && *runtime != '\0') {
    return std::string(runtime) + "/thaw";
  }
  return {};
}

std::string host_kvm_key() {
  struct utsname u {};
  ::uname(&u);
  std::string source = read_small_file("/proc/sys/kernel/random/boot_id") + "|" + u.release + "|" + u.version;
  for (const char* module : {"kvm", "kvm_intel", "kvm_amd", "kvm_pvm"}) source += "|" + module_fingerprint(module);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(fnv1a(source)));
  return hex;
}

std::vector<uint8_t> encode_cpuid_cache(std::span<const kvm_cpuid_entry2> entries) {
  std::vector<uint8_t> image(sizeof kMagic + sizeof(uint32_t) + entries.size_bytes());
  auto count = static_cast<uint32_t>(entries.size());
  std::memcpy(image.data(), kMagic, sizeof kMagic);
  std::memcpy(image.data() + sizeof kMagic, &count, sizeof count);
  std::memcpy(image.data() + sizeof kMagic + sizeof count, entries.data(), entries.size_bytes());
  return image;
}

std::optional<std::vector<kvm_cpuid_entry2>> decode_cpuid_cache(std::span<const uint8_t> image) {
  constexpr size_t kHeader = sizeof kMagic + sizeof(uint32_t);
  if (image.size() < kHeader || std::memcmp(image.data(), kMagic, sizeof kMagic) != 0) return std::nullopt;
  uint32_t count;
  std::memcpy(&count, image.data() + sizeof kMagic, sizeof count);
  if (count == 0 || count > kMaxEntries || image.size() != kHeader + count * sizeof(kvm_cpuid_entry2)) {
    return std::nullopt;
  }
  std::vector<kvm_cpuid_entry2> entries(count);
  std::memcpy(entries.data(), image.data() + kHeader, count * sizeof(kvm_cpuid_entry2));
  return entries;
}

std::optional<std::vector<kvm_cpuid_entry2>> load_cached_cpuid(const std::string& cache_dir) {
  if (cache_dir.empty()) return std::nullopt;
  std::ifstream in(cache_dir + "/cpuid-" + host_kvm_key(), std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode_cpuid_cache(image);
}

std::vector<kvm_cpuid_entry2> supported_cpuid_cached(const kvm::KvmSystem& kvm, const std::string& cache_dir) {
  if (auto cached = load_cached_cpuid(cache_dir)) return *cached;
  auto entries = kvm.supported_cpuid();
  if (cache_dir.empty()) return entries;
  std::string path = cache_dir + "/cpuid-" + host_kvm_key();
  // Best effort: a cache that cannot be written only costs time.
  ::mkdir(cache_dir.c_str(), 0700);
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  auto image = encode_cpuid_cache(entries);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd >= 0) {
    bool ok = ::write(fd, image.data(), image.size()) == static_cast<ssize_t>(image.size());
    ::close(fd);
    if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
  } else {
    spdlog::debug("CPUID cache {} not writable: {}", cache_dir, std::strerror(errno));
  }
  return entries;
}

}  // namespace thaw::vmm
