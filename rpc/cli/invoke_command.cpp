// `thaw invoke`: acquire a clone, run one function in its guest agent (or,
// on a program template, function "run": the user's program with the
// payload as stdin), release it; prints the status, the payload (and a
// program's stderr) and where the time went.
#include <cstdio>
#include <cstring>
#include <iostream>

#include <nlohmann/json.hpp>

#include "rpc/cli/acquire_request.h"
#include "rpc/cli/client_options.h"
#include "rpc/cli/commands.h"
#include "rpc/cli/lease_view.h"
#include "rpc/cli/program_options.h"
#include "rpc/pool_client.h"
#include "base/errors.h"

namespace thaw::cli {

namespace {

struct InvokeOptions {
  ClientOptions client;
  AcquireArgs acquire;
  std::string function;
  std::string payload_text;
  std::string payload_file;
  uint64_t payload_u64 = 0;
  uint64_t invoke_timeout_ms = 10000;
  bool has_u64 = false;
};

std::vector<uint8_t> request_payload(const InvokeOptions& opt) {
  if (opt.has_u64) {
    std::vector<uint8_t> out(8);
    for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(opt.payload_u64 >> (8 * i));  // little-endian
    return out;
  }
  return read_payload(opt.payload_text, opt.payload_file);
}

bool printable(const std::vector<uint8_t>& bytes) {
  for (uint8_t b : bytes) {
    if ((b < 0x20 || b >= 0x7f) && b != '\n' && b != '\t') return false;
  }
  return true;
}

std::string hex(const std::vector<uint8_t>& bytes) {
  std::string out;
  char buf[4];
  for (uint8_t b : bytes) {
    std::snprintf(buf, sizeof buf, "%02x", b);
    out += buf;
  }
  return out;
}

int run_invoke(const InvokeOptions& opt) {
  auto payload = request_payload(opt);
  rpc::PoolConnection conn(opt.client.socket);
  auto& ws = conn.wait_scope();
  auto start = std::chrono::steady_clock::now();
  auto vm = send_acquire(conn, opt.acquire);
  // Pipelined on the promised Vm: acquire, info and invoke leave together.
  auto info_promise = vm.infoRequest().send();
  auto inv = vm.invokeRequest();
  inv.setFunction(opt.function);
  inv.setPayload(kj::arrayPtr(payload.data(), payload.size()));
  inv.setTimeoutMs(opt.invoke_timeout_ms);
  auto result = inv.send().wait(ws);
  double round_trip_ms = ms_since(start);
  auto info = LeaseView::from(info_promise.wait(ws));
  uint32_t status = result.getStatus();
  std::vector<uint8_t> out(result.getPayload().begin(), result.getPayload().end());
  std::string err_text(result.getStderr().begin(), result.getStderr().end());
  auto release_start = std::chrono::steady_clock::now();
  vm.releaseRequest().send().wait(ws);
  double release_ms = ms_since(release_start);

  if (opt.client.json) {
    nlohmann::json j = {{"lease", info.json()},
                        {"function", opt.function},
                        {"status", status},
                        {"payload_hex", hex(out)},
                        {"ms",
                         {{"round_trip", round_trip_ms},
                          {"acquire", info.acquire_ms},
                          {"invoke_total", result.getTotalMs()},
                          {"guest", result.getGuestMs()},
                          {"release", release_ms}}}};
    if (printable(out)) j["payload_text"] = std::string(out.begin(), out.end());
    // A program's stderr; the agent's functions have none. Bytes that are
    // not UTF-8 would make the dump throw: shown as U+FFFD.
    j["stderr_text"] = err_text;
    if (out.size() == 8) {
      uint64_t v = 0;
      std::memcpy(&v, out.data(), 8);
      j["payload_u64"] = v;
    }
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::printf("%s on clone %llu of %s: status %u%s\n", opt.function.c_str(),
                static_cast<unsigned long long>(info.clone_id), info.template_name.c_str(), status,
                status == 0 ? " (ok)" : "");
    if (out.size() == 8) {
      uint64_t v = 0;
      std::memcpy(&v, out.data(), 8);
      std::printf("  payload      u64 %llu (0x%016llx)\n", static_cast<unsigned long long>(v),
                  static_cast<unsigned long long>(v));
    } else if (printable(out)) {
      std::printf("  payload      \"%s\"\n", std::string(out.begin(), out.end()).c_str());
    } else {
      std::printf("  payload      %zu bytes: %s\n", out.size(), hex(out).substr(0, 128).c_str());
    }
    if (!err_text.empty()) {
      std::printf("  stderr       %zu bytes:\n", err_text.size());
      std::fwrite(err_text.data(), 1, err_text.size(), stdout);
      if (err_text.back() != '\n') std::putchar('\n');
    }
    std::printf("  acquire      %9.3f ms  (%s)\n", info.acquire_ms, info.pool_hit ? "warm pool hit" : "waited for a refill");
    std::printf("  invoke       %9.3f ms  (guest %.3f ms)\n", result.getTotalMs(), result.getGuestMs());
    std::printf("  round trip   %9.3f ms  (acquire + invoke, as this client saw it)\n", round_trip_ms);
    std::printf("  release      %9.3f ms\n", release_ms);
  }
  return status == 0 ? kExitOk : kExitGuestFailure;
}

}  // namespace

void add_invoke_command(CLI::App& app, std::function<int()>& run) {
  auto opt = std::make_shared<InvokeOptions>();
  auto* cmd = app.add_subcommand("invoke", "Acquire a clone, run a function in its guest agent, release it");
  cmd->add_option("template", opt->acquire.template_name, "Template name")->required();
  cmd->add_option("function", opt->function,
                  "Guest function: echo, hash, touch, sleep (pool/invoke_protocol.h); `run` on a program template")
      ->required();
  auto* text = cmd->add_option("--payload", opt->payload_text, "Payload bytes, as given (a program's stdin)");
  auto* file = cmd->add_option("--payload-file", opt->payload_file, "Read the payload from this file (at most 1 MiB)");
  auto* u64 = cmd->add_option("--payload-u64", opt->payload_u64, "Payload: one little-endian u64 (hash, touch, sleep)");
  text->excludes(u64);
  file->excludes(text);
  file->excludes(u64);
  add_acquire_options(*cmd, opt->acquire);
  cmd->add_option("--invoke-timeout-ms", opt->invoke_timeout_ms, "How long the guest may take (1-60000)")
      ->check(CLI::Range(uint64_t{1}, uint64_t{60000}))
      ->capture_default_str();
  add_client_options(*cmd, opt->client);
  cmd->callback([&run, opt, u64] {
    opt->has_u64 = u64->count() > 0;
    run = [opt] { return run_rpc_command([&] { return run_invoke(*opt); }); };
  });
}

}  // namespace thaw::cli
