#include "rpc/daemon/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <fmt/format.h>

#include <set>
#include <toml.hpp>

#include "rpc/error_mapping.h"
#include "rpc/validation.h"

namespace thaw::daemon {

namespace {

[[noreturn]] void fail(const toml::value& at, const std::string& key, const std::string& problem) {
  auto loc = at.location();
  throw ConfigError(fmt::format("{}:{}: {}: {}\n{}", loc.file_name(), loc.line(), key, problem,
                                toml::format_error(key + ": " + problem, at, problem)));
}

void reject_unknown_keys(const toml::value& table, const std::set<std::string>& known, const std::string& prefix) {
  for (const auto& [key, value] : table.as_table()) {
    if (known.count(key) == 0) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      fail(value, prefix + key, "unknown key (known: " + list + ")");
    }
  }
}

void read_string(const toml::value& table, const std::string& key, const std::string& path, std::string& out) {
  if (!table.contains(key)) return;
  const auto& v = table.at(key);
  if (!v.is_string()) fail(v, path, "must be a string");
  out = v.as_string().str;
}

template <typename T>
void read_uint(const toml::value& table, const std::string& key, const std::string& path, T& out, uint64_t lo,
               uint64_t hi) {
  if (!table.contains(key)) return;
  const auto& v = table.at(key);
  if (!v.is_integer()) fail(v, path, "must be an integer");
  auto n = v.as_integer();
  if (n < 0 || static_cast<uint64_t>(n) < lo || static_cast<uint64_t>(n) > hi) {
    fail(v, path, fmt::format("{} is out of range; must be {}..{}", n, lo, hi));
  }
  out = static_cast<T>(n);
}

void read_strings(const toml::value& table, const std::string& key, const std::string& path,
                  std::vector<std::string>& out) {
  if (!table.contains(key)) return;
  const auto& v = table.at(key);
  if (!v.is_array()) fail(v, path, "must be an array of strings");
  out.clear();
  for (size_t i = 0; i < v.as_array().size(); ++i) {
    const auto& item = v.as_array()[i];
    if (!item.is_string()) fail(item, fmt::format("{}[{}]", path, i), "must be a string");
    out.push_back(item.as_string().str);
  }
}

void require(const toml::value& table, const std::string& key, const std::string& path) {
  if (!table.contains(key)) fail(table, path, "is required");
}

PoolConfig read_pool(const toml::value& t, size_t index, const rpc::Limits& limits, const std::string& program_kernel) {
  std::string p = fmt::format("pool[{}].", index);
  if (!t.is_table()) fail(t, p.substr(0, p.size() - 1), "must be a table ([[pool]])");
  reject_unknown_keys(t,
                      {"name", "kernel", "initrd", "cmdline", "mem_mib", "vcpus", "min_warm", "max_warm",
                       "memory_budget_mib", "program", "args", "env", "files", "guest", "rootfs"},
                      p);
  require(t, "name", p + "name");
  PoolConfig pc;
  std::string guest = "mini";
  read_string(t, "guest", p + "guest", guest);
  auto kind = pool::parse_guest_kind(guest);
  if (!kind) fail(t.at("guest"), p + "guest", "must be \"mini\" or \"linux\"");
  pc.spec.guest = *kind;
  if (pc.spec.is_linux()) {
    // Linux: the user's kernel, the program from the root file system;
    // thaw writes the command line's base (pool/linux_initramfs.h).
    require(t, "kernel", p + "kernel");
    require(t, "program", p + "program");
    if (t.contains("files")) fail(t.at("files"), p + "files", "is the mini guest's; a Linux pool takes rootfs");
    pc.spec.cmdline.clear();
    read_string(t, "rootfs", p + "rootfs", pc.spec.files_dir);
  } else if (t.contains("rootfs")) {
    fail(t.at("rootfs"), p + "rootfs", "needs guest = \"linux\"");
  }
  if (!t.contains("kernel")) {
    if (!t.contains("program")) fail(t, p + "kernel", "is required (or give a program, which runs in the mini guest)");
    if (program_kernel.empty()) fail(t, p + "kernel", "is required: no mini guest was found beside thawd");
    pc.spec.kernel = program_kernel;
    pc.spec.cmdline = "console=ttyS0 thaw.quiet=1";  // the VMM appends thaw.after=program
  }
  read_string(t, "name", p + "name", pc.spec.name);
  read_string(t, "kernel", p + "kernel", pc.spec.kernel);
  read_string(t, "initrd", p + "initrd", pc.spec.initrd);
  read_string(t, "cmdline", p + "cmdline", pc.spec.cmdline);
  read_uint(t, "mem_mib", p + "mem_mib", pc.spec.mem_mib, pool::kMinTemplateMemMib, limits.max_mem_mib);
  read_uint(t, "vcpus", p + "vcpus", pc.spec.vcpus, 1, limits.max_vcpus);
  read_string(t, "program", p + "program", pc.spec.program);
  read_strings(t, "args", p + "args", pc.spec.args);
  read_strings(t, "env", p + "env", pc.spec.env);
  read_string(t, "files", p + "files", pc.spec.files_dir);
  read_uint(t, "min_warm", p + "min_warm", pc.policy.min_warm, 0, limits.max_warm);
  read_uint(t, "max_warm", p + "max_warm", pc.policy.max_warm, 1, limits.max_warm);
  read_uint(t, "memory_budget_mib", p + "memory_budget_mib", pc.policy.memory_budget_mib, 1, uint64_t{1} << 30);
  // The same checks the RPC server applies to createTemplate.
  try {
    rpc::check_spec(pc.spec, limits);
  } catch (const kj::Exception& e) {
    fail(t, p.substr(0, p.size() - 1), rpc::error_message(e));
  }
  if (pc.policy.min_warm > pc.policy.max_warm) {
    fail(t.at(t.contains("min_warm") ? "min_warm" : "max_warm"), p + "min_warm",
         fmt::format("min_warm ({}) is more than max_warm ({})", pc.policy.min_warm, pc.policy.max_warm));
  }
  return pc;
}

}  // namespace

// Whether a numeric HOST:PORT ("127.0.0.1:7777", "[::1]:7777") names a
// loopback address: 127.0.0.0/8 or ::1.
static bool is_loopback_tcp(const std::string& address) {
  std::string host = address.substr(0, address.rfind(':'));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  return ::inet_pton(AF_INET6, host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

DaemonConfig load_config(const std::string& path, const std::string& program_kernel) {
  toml::value root;
  try {
    root = toml::parse(path);
  } catch (const toml::syntax_error& e) {
    throw ConfigError(fmt::format("{}: not valid TOML:\n{}", path, e.what()));
  } catch (const std::exception& e) {
    throw ConfigError(fmt::format("{}: cannot read: {}", path, e.what()));
  }
  DaemonConfig c;
  reject_unknown_keys(root,
                      {"socket", "tcp", "template_dir", "vsock_dir", "log_level", "metrics", "default_lease_ms",
                       "max_lease_ms", "workers", "autoscale_period_ms", "autoscale_headroom", "autoscale_stall_ms",
                       "refill_threads", "reset_threads", "clones_per_worker", "allowed_image_dirs", "max_connections", "max_message_kib",
                       "message_timeout_ms", "max_inflight_mib", "user", "allow_root", "socket_group", "kvm_device", "template_workers",
                       "worker_cgroups", "vm_shells", "pool"},
                      "");
  read_string(root, "socket", "socket", c.socket);
  read_string(root, "tcp", "tcp", c.tcp);
  read_string(root, "template_dir", "template_dir", c.template_dir);
  read_string(root, "vsock_dir", "vsock_dir", c.vsock_dir);
  read_string(root, "log_level", "log_level", c.log_level);
  read_string(root, "metrics", "metrics", c.metrics);
  read_uint(root, "default_lease_ms", "default_lease_ms", c.default_lease_ms, 1, uint64_t{1} << 40);
  read_uint(root, "max_lease_ms", "max_lease_ms", c.max_lease_ms, 1, uint64_t{1} << 40);
  read_uint(root, "workers", "workers", c.workers, 1, 4096);
  read_uint(root, "autoscale_period_ms", "autoscale_period_ms", c.autoscale_period_ms, 10, 60000);
  read_uint(root, "autoscale_headroom", "autoscale_headroom", c.autoscale_headroom, 0, 1024);
  read_uint(root, "autoscale_stall_ms", "autoscale_stall_ms", c.autoscale_stall_ms, 0, 10000);
  read_uint(root, "refill_threads", "refill_threads", c.refill_threads, 0, 64);
  read_uint(root, "reset_threads", "reset_threads", c.reset_threads, 1, 64);
  read_uint(root, "clones_per_worker", "clones_per_worker", c.clones_per_worker, 0, 65536);
  read_uint(root, "max_connections", "max_connections", c.max_connections, 1, 1u << 20);
  read_uint(root, "max_message_kib", "max_message_kib", c.max_message_kib, 64, uint64_t{1} << 20);
  read_uint(root, "message_timeout_ms", "message_timeout_ms", c.message_timeout_ms, 10, 3600000);
  read_uint(root, "max_inflight_mib", "max_inflight_mib", c.max_inflight_mib, 1, uint64_t{1} << 20);
  if (c.max_inflight_mib * 1024 < c.max_message_kib) {
    fail(root.at("max_inflight_mib"), "max_inflight_mib",
         fmt::format("{} MiB is less than one message of max_message_kib ({} KiB)", c.max_inflight_mib,
                     c.max_message_kib));
  }
  read_strings(root, "allowed_image_dirs", "allowed_image_dirs", c.allowed_image_dirs);
  read_string(root, "user", "user", c.user);
  read_string(root, "socket_group", "socket_group", c.socket_group);
  read_string(root, "kvm_device", "kvm_device", c.kvm_device);
  read_string(root, "worker_cgroups", "worker_cgroups", c.worker_cgroups);
  if (c.worker_cgroups != "auto" && c.worker_cgroups != "off" &&
      (c.worker_cgroups.empty() || c.worker_cgroups.front() != '/')) {
    fail(root.at("worker_cgroups"), "worker_cgroups", "must be \"auto\", \"off\" or an absolute path");
  }
  read_string(root, "vm_shells", "vm_shells", c.vm_shells);
  if (c.vm_shells != "auto" && c.vm_shells != "on" && c.vm_shells != "off") {
    fail(root.at("vm_shells"), "vm_shells", "must be \"auto\", \"on\" or \"off\"");
  }
  for (auto [key, flag] : {std::pair<const char*, bool*>{"allow_root", &c.allow_root},
                           {"template_workers", &c.template_workers}}) {
    if (!root.contains(key)) continue;
    if (!root.at(key).is_boolean()) fail(root.at(key), key, "must be true or false");
    *flag = root.at(key).as_boolean();
  }
  if (c.kvm_device.empty() || c.kvm_device.front() != '/') {
    fail(root.at("kvm_device"), "kvm_device", "must be an absolute path");
  }
  for (const auto& dir : c.allowed_image_dirs) {
    if (dir.empty() || dir.front() != '/') {
      fail(root.at("allowed_image_dirs"), "allowed_image_dirs", "\"" + dir + "\" is not an absolute path");
    }
  }

  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  if (kLevels.count(c.log_level) == 0) fail(root.at("log_level"), "log_level", "must be one of trace, debug, info, warn, error");
  if (c.socket.empty() && c.tcp.empty()) fail(root, "socket", "socket and tcp are both empty; thawd would not listen");
  if (!c.socket.empty() && c.socket.front() != '/') fail(root.at("socket"), "socket", "must be an absolute path");
  // The RPC has no authentication: whoever reaches the port leases VMs.
  if (!c.tcp.empty() && !is_loopback_tcp(c.tcp)) {
    fail(root.at("tcp"), "tcp",
         "\"" + c.tcp + "\" is not a loopback address; thawd's RPC has no authentication, so TCP listens on "
         "127.0.0.1 or [::1] only (remote clients: the unix socket behind an authenticating proxy)");
  }
  if (c.template_dir.empty() || c.template_dir.front() != '/') {
    fail(root.contains("template_dir") ? root.at("template_dir") : root, "template_dir", "must be an absolute path");
  }
  if (c.vsock_dir.empty() || c.vsock_dir.front() != '/') {
    fail(root.contains("vsock_dir") ? root.at("vsock_dir") : root, "vsock_dir", "must be an absolute path");
  }
  if (c.default_lease_ms > c.max_lease_ms) {
    fail(root.at("default_lease_ms"), "default_lease_ms",
         fmt::format("{} is more than max_lease_ms ({})", c.default_lease_ms, c.max_lease_ms));
  }

  rpc::Limits limits;
  if (root.contains("pool")) {
    const auto& pools = root.at("pool");
    if (!pools.is_array()) fail(pools, "pool", "must be an array of tables ([[pool]])");
    std::set<std::string> names;
    for (size_t i = 0; i < pools.as_array().size(); ++i) {
      const auto& t = pools.as_array()[i];
      auto pc = read_pool(t, i, limits, program_kernel);
      if (!names.insert(pc.spec.name).second) fail(t.at("name"), fmt::format("pool[{}].name", i), "duplicate pool name");
      c.pools.push_back(std::move(pc));
    }
  }
  return c;
}

// --- Writing: what load_config reads back as the same config ---
std::string toml_string(const std::string& text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\t': out += "\\t"; break;
      case '\n': out += "\\n"; break;
      case '\f': out += "\\f"; break;
      case '\r': out += "\\r"; break;
      default:
        // Other control characters (and DEL) have no short escape in TOML.
        if (c < 0x20 || c == 0x7f) {
          out += fmt::format("\\u{:04X}", c);
        } else {
          out += static_cast<char>(c);  // UTF-8 passes through as it is
        }
    }
  }
  return out + "\"";
}

std::string render_config_header(const DaemonConfig& c) {
  const DaemonConfig defaults;
  std::string out;
  auto string_key = [&](const char* key, const std::string& value, const std::string& fallback, bool always) {
    if (always || value != fallback) out += fmt::format("{} = {}\n", key, toml_string(value));
  };
  auto number_key = [&](const char* key, uint64_t value, uint64_t fallback) {
    if (value != fallback) out += fmt::format("{} = {}\n", key, value);
  };
  string_key("socket", c.socket, defaults.socket, true);
  string_key("template_dir", c.template_dir, defaults.template_dir, true);
  string_key("vsock_dir", c.vsock_dir, defaults.vsock_dir, true);
  string_key("log_level", c.log_level, defaults.log_level, false);
  string_key("tcp", c.tcp, defaults.tcp, false);
  string_key("metrics", c.metrics, defaults.metrics, false);
  number_key("default_lease_ms", c.default_lease_ms, defaults.default_lease_ms);
  number_key("max_lease_ms", c.max_lease_ms, defaults.max_lease_ms);
  number_key("workers", c.workers, defaults.workers);
  number_key("autoscale_period_ms", c.autoscale_period_ms, defaults.autoscale_period_ms);
  number_key("autoscale_headroom", c.autoscale_headroom, defaults.autoscale_headroom);
  number_key("autoscale_stall_ms", c.autoscale_stall_ms, defaults.autoscale_stall_ms);
  number_key("refill_threads", c.refill_threads, defaults.refill_threads);
  number_key("reset_threads", c.reset_threads, defaults.reset_threads);
  number_key("clones_per_worker", c.clones_per_worker, defaults.clones_per_worker);
  number_key("max_connections", c.max_connections, defaults.max_connections);
  number_key("max_message_kib", c.max_message_kib, defaults.max_message_kib);
  number_key("message_timeout_ms", c.message_timeout_ms, defaults.message_timeout_ms);
  number_key("max_inflight_mib", c.max_inflight_mib, defaults.max_inflight_mib);
  string_key("user", c.user, defaults.user, false);
  if (c.allow_root != defaults.allow_root) out += fmt::format("allow_root = {}\n", c.allow_root);
  if (c.template_workers != defaults.template_workers) {
    out += fmt::format("template_workers = {}\n", c.template_workers);
  }
  string_key("socket_group", c.socket_group, defaults.socket_group, false);
  string_key("kvm_device", c.kvm_device, defaults.kvm_device, false);
  string_key("worker_cgroups", c.worker_cgroups, defaults.worker_cgroups, false);
  string_key("vm_shells", c.vm_shells, defaults.vm_shells, false);
  if (!c.allowed_image_dirs.empty()) {
    std::string list;
    for (const auto& dir : c.allowed_image_dirs) list += (list.empty() ? "" : ", ") + toml_string(dir);
    out += fmt::format("allowed_image_dirs = [{}]\n", list);
  }
  return out;
}

std::string render_pool(const PoolConfig& p) {
  const pool::TemplateSpec default_spec;
  std::string out = "\n[[pool]]\n";
  out += fmt::format("name = {}\n", toml_string(p.spec.name));
  out += fmt::format("kernel = {}\n", toml_string(p.spec.kernel));
  if (!p.spec.initrd.empty()) out += fmt::format("initrd = {}\n", toml_string(p.spec.initrd));
  out += fmt::format("cmdline = {}\n", toml_string(p.spec.cmdline));
  out += fmt::format("mem_mib = {}\n", p.spec.mem_mib);
  if (p.spec.vcpus != default_spec.vcpus) out += fmt::format("vcpus = {}\n", p.spec.vcpus);
  if (p.spec.is_program()) {
    auto list = [](const std::vector<std::string>& items) {
      std::string text = "[";
      for (size_t i = 0; i < items.size(); ++i) text += (i == 0 ? "" : ", ") + toml_string(items[i]);
      return text + "]";
    };
    out += fmt::format("program = {}\n", toml_string(p.spec.program));
    if (!p.spec.args.empty()) out += fmt::format("args = {}\n", list(p.spec.args));
    if (!p.spec.env.empty()) out += fmt::format("env = {}\n", list(p.spec.env));
    if (!p.spec.files_dir.empty()) {
      out += fmt::format("{} = {}\n", p.spec.is_linux() ? "rootfs" : "files", toml_string(p.spec.files_dir));
    }
  }
  if (p.spec.is_linux()) out += "guest = \"linux\"\n";
  out += fmt::format("min_warm = {}\n", p.policy.min_warm);
  out += fmt::format("max_warm = {}\n", p.policy.max_warm);
  out += fmt::format("memory_budget_mib = {}\n", p.policy.memory_budget_mib);
  return out;
}

std::string render_config(const DaemonConfig& config) {
  std::string out = render_config_header(config);
  for (const auto& p : config.pools) out += render_pool(p);
  return out;
}

}  // namespace thaw::daemon
