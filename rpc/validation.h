// Checks on every argument that crosses the wire, before anything reaches
// the pool. Each failed check throws a kj FAILED exception whose message
// names the argument, the value and the allowed range.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "pool/invoke_protocol.h"
#include "pool/pool_types.h"

namespace thaw::rpc {

struct Limits {
  uint64_t max_lease_ms = 3600000;            // the pool's max_lease_ms
  uint64_t max_timeout_ms = 60000;            // acquire and invoke
  uint64_t default_invoke_timeout_ms = 10000;  // invoke with timeoutMs 0
  size_t max_function_name = 64;
  uint64_t max_mem_mib = pool::kMaxTemplateMemMib;
  uint32_t max_vcpus = pool::kMaxTemplateVcpus;
  uint32_t max_warm = 1024;
  size_t max_path = 4096;
  size_t max_cmdline = 2048;  // x86 Linux's COMMAND_LINE_SIZE
  size_t max_invoke_bytes = pool::kMaxInvokeBytes;  // function name + payload + 2
  size_t max_program_args = 256;    // spec.args, and spec.env alike
  size_t max_program_arg_bytes = 4096;  // each arg or K=V
  // Directories (resolved, no trailing slash) that spec paths must lie in
  // once their symlinks are resolved; empty: any path.
  std::vector<std::string> allowed_image_dirs;
};

// [a-z0-9][a-z0-9_-]{0,62}; `what` names the argument ("template", "spec.name").
void check_template_name(std::string_view name, std::string_view what);
// `dirs` with their symlinks resolved and no trailing slash, as
// Limits::allowed_image_dirs expects them.
std::vector<std::string> resolve_allowed_dirs(const std::vector<std::string>& dirs);

void check_spec(const pool::TemplateSpec& spec, const Limits& limits);
// The program fields of a spec (part of check_spec): program and filesDir
// absolute, no initrd beside a program, args and env bounded, env K=V, no
// program fields without a program.
void check_program(const pool::TemplateSpec& spec, const Limits& limits);
void check_policy(const pool::PoolPolicy& policy, const Limits& limits);
// A renewal: 1 .. limits.max_lease_ms.
void check_lease_ms(uint64_t lease_ms, const Limits& limits);
// An acquire: 0 (the daemon's default_lease_ms) .. limits.max_lease_ms.
void check_acquire_lease_ms(uint64_t lease_ms, const Limits& limits);
// 0 .. limits.max_timeout_ms.
void check_timeout_ms(uint64_t timeout_ms, const Limits& limits);
// 1 .. max_function_name printable ASCII bytes.
void check_function(std::string_view function, const Limits& limits);
void check_payload(std::string_view function, size_t payload_bytes, const Limits& limits);

}  // namespace thaw::rpc
