#include "pool/template_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "snapshot/memory_file.h"
#include "snapshot/snapshot_dir.h"
#include "base/errors.h"
#include "base/printable_text.h"
#include "base/unique_fd.h"

namespace thaw::pool {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr size_t kMaxCmdline = 4096;
constexpr uint32_t kMaxWarm = 4096;
constexpr uint64_t kMaxTemplateJsonBytes = 1 << 20;

void fsync_path(const std::string& path, bool directory) {
  int fd = ::open(path.c_str(), (directory ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SysError("open", errno, path + " (to fsync)");
  UniqueFd owned(fd);
  if (::fsync(owned.get()) != 0) throw SysError("fsync", errno, path);
}

void check_file(const std::string& path, const char* what) {
  std::error_code ec;
  auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw BadArgument(std::string(what) + " '" + path + "' does not exist");
  if (!fs::is_regular_file(status)) throw BadArgument(std::string(what) + " '" + path + "' is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) throw BadArgument(std::string(what) + " '" + path + "' is not readable");
}

}  // namespace

bool is_valid_template_name(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(name[0])) return false;
  return std::all_of(name.begin() + 1, name.end(), [&](char c) { return lower_or_digit(c) || c == '_' || c == '-'; });
}

void validate_template_name(const std::string& name) {
  if (!is_valid_template_name(name)) {
    throw BadArgument("template name '" + name + "' is not valid: 1 to 63 characters, [a-z0-9] then [a-z0-9_-]");
  }
}

void validate_spec(const TemplateSpec& spec) {
  validate_template_name(spec.name);
  if (spec.kernel.empty()) throw BadArgument("template '" + spec.name + "': no kernel given");
  check_file(spec.kernel, "kernel");
  if (!spec.initrd.empty()) check_file(spec.initrd, "initrd");
  if (spec.cmdline.size() > kMaxCmdline) {
    throw BadArgument("template '" + spec.name + "': the command line is " + std::to_string(spec.cmdline.size()) +
                      " bytes, at most " + std::to_string(kMaxCmdline));
  }
  if (spec.mem_mib < kMinTemplateMemMib || spec.mem_mib > kMaxTemplateMemMib) {
    throw BadArgument("template '" + spec.name + "': memory " + std::to_string(spec.mem_mib) + " MiB is outside " +
                      std::to_string(kMinTemplateMemMib) + " .. " + std::to_string(kMaxTemplateMemMib) + " MiB");
  }
  if (spec.vcpus < 1 || spec.vcpus > kMaxTemplateVcpus) {
    throw BadArgument("template '" + spec.name + "': " + std::to_string(spec.vcpus) + " vCPUs is outside 1 .. " +
                      std::to_string(kMaxTemplateVcpus));
  }
  if (spec.is_linux() && !spec.is_program()) {
    throw BadArgument("template '" + spec.name + "': a Linux template needs a program (its init agent runs it)");
  }
  if (spec.is_program()) {
    // The ELF itself (static, x86-64, fits the RAM) is checked by the loader
    // when the template boots; here only what a wrong path would hide.
    check_file(spec.program, "program");
    if (!spec.files_dir.empty() && !fs::is_directory(spec.files_dir)) {
      throw BadArgument("template '" + spec.name + "': files directory '" + spec.files_dir + "' is not a directory");
    }
    if (!spec.initrd.empty()) throw BadArgument("template '" + spec.name + "': a program template takes no initrd");
    // The VMM appends thaw.after=program; another thaw.after= would fight it.
    if (!spec.is_linux() && spec.cmdline.find("thaw.after=") != std::string::npos) {
      throw BadArgument("template '" + spec.name + "': a program template's command line must not set thaw.after= "
                        "(thaw adds thaw.after=program)");
    }
  } else if (!spec.args.empty() || !spec.env.empty() || !spec.files_dir.empty()) {
    throw BadArgument("template '" + spec.name + "': args, env and files need a program");
  }
}

void validate_policy(const PoolPolicy& policy) {
  if (policy.min_warm > policy.max_warm) {
    throw BadArgument("pool policy: min_warm " + std::to_string(policy.min_warm) + " is above max_warm " +
                      std::to_string(policy.max_warm));
  }
  if (policy.max_warm > kMaxWarm) {
    throw BadArgument("pool policy: max_warm " + std::to_string(policy.max_warm) + " is above " +
                      std::to_string(kMaxWarm));
  }
}

std::string encode_template_json(const TemplateRecord& r) {
  json j;
  j["version"] = 1;
  j["spec"] = {{"name", r.spec.name},       {"kernel", r.spec.kernel}, {"initrd", r.spec.initrd},
               {"cmdline", r.spec.cmdline}, {"mem_mib", r.spec.mem_mib}, {"vcpus", r.spec.vcpus}};
  // Only for a program template: a kernel template's record stays as it was.
  if (r.spec.is_program()) {
    j["spec"]["program"] = r.spec.program;
    j["spec"]["args"] = r.spec.args;
    j["spec"]["env"] = r.spec.env;
    j["spec"]["files_dir"] = r.spec.files_dir;
  }
  if (r.spec.is_linux()) j["spec"]["guest"] = guest_kind_name(r.spec.guest);
  j["policy"] = {{"min_warm", r.policy.min_warm},
                 {"max_warm", r.policy.max_warm},
                 {"memory_budget_mib", r.policy.memory_budget_mib}};
  j["cold_boot_ms"] = r.cold_boot_ms;
  return j.dump(2) + "\n";
}

TemplateRecord decode_template_json(const std::string& text) {
  TemplateRecord r;
  try {
    json j = json::parse(text);
    if (j.at("version").get<int>() != 1) throw BadArgument("template.json: unsupported version " + j.at("version").dump());
    const json& spec = j.at("spec");
    r.spec.name = spec.at("name").get<std::string>();
    r.spec.kernel = spec.at("kernel").get<std::string>();
    r.spec.initrd = spec.at("initrd").get<std::string>();
    r.spec.cmdline = spec.at("cmdline").get<std::string>();
    r.spec.mem_mib = spec.at("mem_mib").get<uint64_t>();
    r.spec.vcpus = spec.at("vcpus").get<uint32_t>();
    // Absent in records written before program templates (and in kernel ones).
    r.spec.program = spec.value("program", std::string());
    r.spec.args = spec.value("args", std::vector<std::string>());
    r.spec.env = spec.value("env", std::vector<std::string>());
    r.spec.files_dir = spec.value("files_dir", std::string());
    std::string guest = spec.value("guest", std::string("mini"));
    auto kind = parse_guest_kind(guest);
    if (!kind) throw BadArgument("template.json: unknown guest '" + printable_text(guest, 32) + "' (mini or linux)");
    r.spec.guest = *kind;
    const json& policy = j.at("policy");
    r.policy.min_warm = policy.at("min_warm").get<uint32_t>();
    r.policy.max_warm = policy.at("max_warm").get<uint32_t>();
    r.policy.memory_budget_mib = policy.at("memory_budget_mib").get<uint64_t>();
    r.cold_boot_ms = j.value("cold_boot_ms", 0.0);
  } catch (const json::exception& e) {
    throw BadArgument(std::string("template.json: ") + e.what());
  }
  // The kernel may be gone by now: the snapshot is what a template runs.
  validate_template_name(r.spec.name);
  if (r.spec.mem_mib < kMinTemplateMemMib || r.spec.mem_mib > kMaxTemplateMemMib || r.spec.vcpus < 1 ||
      r.spec.vcpus > kMaxTemplateVcpus) {
    throw BadArgument("template.json: memory or vCPU count out of range");
  }
  validate_policy(r.policy);
  return r;
}

TemplateStore::TemplateStore(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  std::error_code ec;
  fs::create_directories(root_, ec);
  if (ec) throw SysError("mkdir", ec.value(), "template directory " + root_);
}

bool TemplateStore::exists(const std::string& name) const {
  std::error_code ec;
  return fs::exists(dir_for(name), ec);
}

std::string TemplateStore::begin(const std::string& name) const {
  std::string tmp = tmp_dir_for(name);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (ec) throw SysError("remove", ec.value(), "stale " + tmp);
  fs::create_directory(tmp, ec);
  if (ec) throw SysError("mkdir", ec.value(), tmp);
  return tmp;
}

void TemplateStore::commit(const std::string& name, const TemplateRecord& record) const {
  std::string tmp = tmp_dir_for(name);
  std::string json_path = tmp + "/" + kTemplateJsonName;
  {
    std::ofstream out(json_path, std::ios::trunc);
    out << encode_template_json(record);
    out.flush();
    if (!out) throw SysError("write", errno ? errno : EIO, json_path);
  }
  fsync_path(json_path, false);
  fsync_path(tmp, true);
  std::string dir = dir_for(name);
  // renameat2(RENAME_NOREPLACE) would be tidier; the caller holds the name.
  if (exists(name)) throw BadArgument("template '" + name + "' already exists");
  if (::rename(tmp.c_str(), dir.c_str()) != 0) throw SysError("rename", errno, tmp + " -> " + dir);
  fsync_path(root_, true);
}

void TemplateStore::abort(const std::string& name) const noexcept {
  std::error_code ec;
  fs::remove_all(tmp_dir_for(name), ec);
  if (ec) spdlog::warn("removing {}: {}", tmp_dir_for(name), ec.message());
}

snapshot::LoadedSnapshot TemplateStore::load_snapshot(const std::string& name, const TemplateRecord& record,
                                                     bool verify_memory) const {
  auto snapshot = snapshot::read_snapshot_dir(dir_for(name));
  if (verify_memory) snapshot::verify_memory_file(snapshot.memory_path, snapshot.state.memory);
  // After the check, which read the whole file: clones fault in small folios.
  snapshot::drop_cached_pages(snapshot.memory_path);
  const auto& saved = snapshot.state;
  if (saved.machine.vcpus.size() != record.spec.vcpus || saved.memory.size_bytes != record.spec.mem_mib << 20) {
    throw BadArgument("template '" + name + "': its snapshot has " + std::to_string(saved.machine.vcpus.size()) +
                      " vCPU(s) and " + std::to_string(saved.memory.size_bytes >> 20) + " MiB, the template " +
                      std::to_string(record.spec.vcpus) + " and " + std::to_string(record.spec.mem_mib) + " MiB");
  }
  return snapshot;
}

void TemplateStore::write_record(const std::string& name, const TemplateRecord& record) const {
  std::string dir = dir_for(name);
  std::string path = dir + "/" + kTemplateJsonName;
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << encode_template_json(record);
    out.flush();
    if (!out) throw SysError("write", errno ? errno : EIO, tmp);
  }
  fsync_path(tmp, false);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw SysError("rename", errno, tmp + " -> " + path);
  fsync_path(dir, true);
}

TemplateRecord TemplateStore::read_record(const std::string& name) const {
  std::string path = dir_for(name) + "/" + kTemplateJsonName;
  std::error_code ec;
  auto size = fs::file_size(path, ec);
  if (ec) throw NotFound("template '" + name + "': " + path + ": " + ec.message());
  if (size > kMaxTemplateJsonBytes) throw BadArgument(path + " is " + std::to_string(size) + " bytes, too big");
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  TemplateRecord record = decode_template_json(text.str());
  if (record.spec.name != name) {
    throw BadArgument(path + " names template '" + record.spec.name + "', its directory is '" + name + "'");
  }
  return record;
}

std::vector<std::string> TemplateStore::list(const std::set<std::string>& creating) const {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root_, ec)) {
    if (!entry.is_directory()) continue;
    std::string file = entry.path().filename().string();
    if (file.starts_with(".deleted-")) {  // a delete that crashed half way
      std::error_code rm_ec;
      fs::remove_all(entry.path(), rm_ec);
      continue;
    }
    if (file.size() > 4 && file.ends_with(kTemplateTmpSuffix)) {
      std::string base = file.substr(0, file.size() - 4);
      if (is_valid_template_name(base) && !creating.contains(base)) {
        spdlog::info("removing {} left by an interrupted template create", entry.path().string());
        std::error_code rm_ec;
        fs::remove_all(entry.path(), rm_ec);
      }
      continue;
    }
    if (!is_valid_template_name(file)) continue;
    if (!fs::exists(entry.path() / snapshot::kStateFileName) || !fs::exists(entry.path() / kTemplateJsonName)) {
      spdlog::warn("{} is not a complete template (no state or template.json); skipped", entry.path().string());
      continue;
    }
    names.push_back(file);
  }
  if (ec) throw SysError("readdir", ec.value(), root_);
  std::sort(names.begin(), names.end());
  return names;
}

void TemplateStore::remove(const std::string& name) const {
  std::string dir = dir_for(name);
  if (!exists(name)) throw NotFound("no template '" + name + "' in " + root_);
  static std::atomic<uint64_t> counter{0};
  // A name no template can have (it starts with '.'), so a crash mid-remove
  // never leaves something list() picks up.
  std::string aside = root_ + "/.deleted-" + name + "-" + std::to_string(::getpid()) + "-" +
                      std::to_string(counter.fetch_add(1));
  if (::rename(dir.c_str(), aside.c_str()) != 0) throw SysError("rename", errno, dir + " -> " + aside);
  std::error_code ec;
  fs::remove_all(aside, ec);
  if (ec) spdlog::warn("removing {}: {}", aside, ec.message());
}

}  // namespace thaw::pool
