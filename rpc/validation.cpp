#include "rpc/validation.h"

#include <limits.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "rpc/error_mapping.h"

namespace thaw::rpc {

namespace {

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (char c : s.substr(0, 80)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (s.size() > 80) out += "...";
  return out + "\"";
}

void check_range(std::string_view what, uint64_t value, uint64_t lo, uint64_t hi) {
  if (value < lo || value > hi) {
    throw_bad_argument(std::string(what) + ": " + std::to_string(value) + " is out of range; must be " +
                       std::to_string(lo) + ".." + std::to_string(hi));
  }
}

// A client names files thawd opens with its own rights: only those inside
// the operator's allowed directories, judged after every symlink is
// resolved, so a link cannot lead out of them.
void check_allowed_dir(std::string_view path, std::string_view what, const std::vector<std::string>& allowed) {
  if (allowed.empty()) return;
  char resolved[PATH_MAX];
  if (::realpath(std::string(path).c_str(), resolved) == nullptr) {
    throw_bad_argument(std::string(what) + ": " + quoted(path) + ": " + std::strerror(errno));
  }
  std::string_view real(resolved);
  for (const auto& dir : allowed) {
    if (dir == "/" || (real.size() > dir.size() && real.substr(0, dir.size()) == dir && real[dir.size()] == '/')) {
      return;
    }
  }
  std::string list;
  for (const auto& dir : allowed) list += (list.empty() ? "" : ", ") + dir;
  throw_bad_argument(std::string(what) + ": " + quoted(path) +
                     " is outside the directories thawd may read images from (allowed_image_dirs: " + list + ")");
}

void check_path(std::string_view path, std::string_view what, bool optional, const Limits& limits) {
  if (path.empty()) {
    if (optional) return;
    throw_bad_argument(std::string(what) + ": must not be empty");
  }
  if (path.size() > limits.max_path) {
    throw_bad_argument(std::string(what) + ": " + std::to_string(path.size()) + " bytes long; at most " +
                       std::to_string(limits.max_path));
  }
  if (path.front() != '/') throw_bad_argument(std::string(what) + ": " + quoted(path) + " is not an absolute path");
  if (path.find('\0') != std::string_view::npos) throw_bad_argument(std::string(what) + ": contains a NUL byte");
  check_allowed_dir(path, what, limits.allowed_image_dirs);
}

}  // namespace

void check_template_name(std::string_view name, std::string_view what) {
  auto lower_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  bool ok = !name.empty() && name.size() <= 63 && lower_digit(name.front());
  for (char c : name) ok = ok && (lower_digit(c) || c == '_' || c == '-');
  if (!ok) {
    throw_bad_argument(std::string(what) + ": " + quoted(name) +
                       " is not a template name; use 1 to 63 of [a-z0-9_-], starting with [a-z0-9]");
  }
}

void check_spec(const pool::TemplateSpec& spec, const Limits& limits) {
  check_template_name(spec.name, "spec.name");
  check_path(spec.kernel, "spec.kernel", false, limits);
  check_path(spec.initrd, "spec.initrd", true, limits);
  if (spec.cmdline.size() > limits.max_cmdline) {
    throw_bad_argument("spec.cmdline: " + std::to_string(spec.cmdline.size()) + " bytes long; at most " +
                       std::to_string(limits.max_cmdline));
  }
  if (spec.cmdline.find('\0') != std::string::npos) throw_bad_argument("spec.cmdline: contains a NUL byte");
  check_range("spec.memMib", spec.mem_mib, pool::kMinTemplateMemMib, limits.max_mem_mib);
  check_range("spec.vcpus", spec.vcpus, 1, limits.max_vcpus);
  check_program(spec, limits);
}

void check_program(const pool::TemplateSpec& spec, const Limits& limits) {
  if (spec.is_linux() && !spec.is_program()) {
    throw_bad_argument("spec.program: a Linux template (spec.guest linux) runs a program; none given");
  }
  if (!spec.is_program()) {
    // Arguments without a program would be silently ignored: refuse them.
    if (!spec.args.empty() || !spec.env.empty() || !spec.files_dir.empty()) {
      throw_bad_argument("spec.args, spec.env and spec.filesDir need spec.program");
    }
    return;
  }
  check_path(spec.program, "spec.program", false, limits);
  check_path(spec.files_dir, "spec.filesDir", true, limits);
  if (!spec.initrd.empty()) {
    throw_bad_argument("spec.initrd: a program template has none (the program's files take its place in RAM)");
  }
  auto check_list = [&](const std::vector<std::string>& list, const char* what) {
    if (list.size() > limits.max_program_args) {
      throw_bad_argument(std::string(what) + ": " + std::to_string(list.size()) + " entries; at most " +
                         std::to_string(limits.max_program_args));
    }
    for (size_t i = 0; i < list.size(); ++i) {
      std::string at = std::string(what) + "[" + std::to_string(i) + "]";
      if (list[i].size() > limits.max_program_arg_bytes) {
        throw_bad_argument(at + ": " + std::to_string(list[i].size()) + " bytes long; at most " +
                           std::to_string(limits.max_program_arg_bytes));
      }
      if (list[i].find('\0') != std::string::npos) throw_bad_argument(at + ": contains a NUL byte");
    }
  };
  check_list(spec.args, "spec.args");
  check_list(spec.env, "spec.env");
  for (size_t i = 0; i < spec.env.size(); ++i) {
    auto eq = spec.env[i].find('=');
    if (eq == 0 || eq == std::string::npos) {
      throw_bad_argument("spec.env[" + std::to_string(i) + "]: " + quoted(spec.env[i]) + " is not K=V");
    }
  }
}

void check_policy(const pool::PoolPolicy& policy, const Limits& limits) {
  check_range("policy.maxWarm", policy.max_warm, 1, limits.max_warm);
  if (policy.min_warm > policy.max_warm) {
    throw_bad_argument("policy.minWarm: " + std::to_string(policy.min_warm) + " is more than policy.maxWarm (" +
                       std::to_string(policy.max_warm) + ")");
  }
  check_range("policy.memoryBudgetMib", policy.memory_budget_mib, 1, uint64_t{1} << 30);
}

void check_lease_ms(uint64_t lease_ms, const Limits& limits) { check_range("leaseMs", lease_ms, 1, limits.max_lease_ms); }

void check_acquire_lease_ms(uint64_t lease_ms, const Limits& limits) {
  check_range("leaseMs", lease_ms, 0, limits.max_lease_ms);
}

void check_timeout_ms(uint64_t timeout_ms, const Limits& limits) {
  check_range("timeoutMs", timeout_ms, 0, limits.max_timeout_ms);
}

void check_function(std::string_view function, const Limits& limits) {
  if (function.empty()) throw_bad_argument("function: must not be empty");
  if (function.size() > limits.max_function_name) {
    throw_bad_argument("function: " + std::to_string(function.size()) + " bytes long; at most " +
                       std::to_string(limits.max_function_name));
  }
  for (char c : function) {
    if (c <= 0x20 || c >= 0x7f) throw_bad_argument("function: " + quoted(function) + " must be printable ASCII without spaces");
  }
}

void check_payload(std::string_view function, size_t payload_bytes, const Limits& limits) {
  size_t max = limits.max_invoke_bytes - 2 - function.size();
  if (payload_bytes > max) {
    throw_bad_argument("payload: " + std::to_string(payload_bytes) + " bytes; at most " + std::to_string(max) +
                       " with function \"" + std::string(function) + "\" (requests are limited to " +
                       std::to_string(limits.max_invoke_bytes) + " bytes)");
  }
}

std::vector<std::string> resolve_allowed_dirs(const std::vector<std::string>& dirs) {
  std::vector<std::string> out;
  for (const auto& dir : dirs) {
    char resolved[PATH_MAX];
    // A directory that does not exist yet (template_dir before the first
    // template) is kept as written: nothing can resolve into it via a link
    // that is not there.
    out.emplace_back(::realpath(dir.c_str(), resolved) != nullptr ? resolved : dir);
    while (out.back().size() > 1 && out.back().back() == '/') out.back().pop_back();
  }
  return out;
}

}  // namespace thaw::rpc
