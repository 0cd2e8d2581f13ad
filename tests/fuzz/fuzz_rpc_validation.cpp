// fuzz_rpc_validation: rpc/validation.h, the checks every argument that
// crosses the wire goes through before it reaches the pool: template names,
// template specs (kernel, program, args, env, paths), pool policies, lease
// and timeout values, function names and payload sizes. A refusal is a kj
// exception (what the client gets); anything else escaping is a finding.
#include <fuzzer/FuzzedDataProvider.h>
#include <kj/exception.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rpc/validation.h"

namespace {

std::vector<std::string> strings(FuzzedDataProvider& in) {
  std::vector<std::string> out(in.ConsumeIntegralInRange<size_t>(0, 4));
  for (auto& s : out) s = in.ConsumeRandomLengthString(64);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  thaw::rpc::Limits limits;
  limits.max_program_args = 3;  // small, so that the limits themselves get hit
  limits.max_program_arg_bytes = 16;
  limits.max_path = 48;
  limits.max_cmdline = 32;
  try {
    switch (in.ConsumeIntegralInRange<int>(0, 5)) {
      case 0:
        thaw::rpc::check_template_name(in.ConsumeRandomLengthString(80), "template");
        break;
      case 1: {
        thaw::pool::TemplateSpec spec;
        spec.name = in.ConsumeRandomLengthString(80);
        spec.kernel = in.ConsumeRandomLengthString(64);
        spec.initrd = in.ConsumeRandomLengthString(64);
        spec.cmdline = in.ConsumeRandomLengthString(64);
        spec.mem_mib = in.ConsumeIntegral<uint64_t>();
        spec.vcpus = in.ConsumeIntegral<uint32_t>();
        spec.program = in.ConsumeRandomLengthString(64);
        spec.args = strings(in);
        spec.env = strings(in);
        spec.files_dir = in.ConsumeRandomLengthString(64);
        thaw::rpc::check_spec(spec, limits);
        break;
      }
      case 2: {
        thaw::pool::PoolPolicy policy;
        policy.min_warm = in.ConsumeIntegral<uint32_t>();
        policy.max_warm = in.ConsumeIntegral<uint32_t>();
        policy.memory_budget_mib = in.ConsumeIntegral<uint64_t>();
        thaw::rpc::check_policy(policy, limits);
        break;
      }
      case 3:
        thaw::rpc::check_lease_ms(in.ConsumeIntegral<uint64_t>(), limits);
        thaw::rpc::check_timeout_ms(in.ConsumeIntegral<uint64_t>(), limits);
        break;
      case 4:
        thaw::rpc::check_function(in.ConsumeRandomLengthString(100), limits);
        break;
      case 5: {
        const std::string function = in.ConsumeRandomLengthString(100);
        thaw::rpc::check_payload(function, in.ConsumeIntegral<size_t>(), limits);
        break;
      }
    }
  } catch (const kj::Exception&) {
  }
  return 0;
}
