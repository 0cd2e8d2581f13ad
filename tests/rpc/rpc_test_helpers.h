// Calls and checks shared by the RPC server tests, in process
// (tests/rpc/unit) and against the real thawd (tests/rpc): acquire a clone,
// count the leased ones, catch what a call throws, and check that a bad
// argument is FAILED with its name in the message.
#pragma once

#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <utility>

#include <gtest/gtest.h>
#include <kj/exception.h>

#include "rpc/error_mapping.h"
#include "rpc/pool_client.h"

namespace thaw::testing {

// A whole file as text ("" when it cannot be read): /proc files among them.
// Also "" when a read fails midway: a /proc/PID file of a process that exits
// while it is read fails with ESRCH, which the stream throws.
inline std::string read_whole_file(const std::string& path) {
  try {
    std::ifstream in(path);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  } catch (const std::exception&) {
    return "";
  }
}

// The mini guest agent's "echo" of `text` in leased clone `vm`.
inline std::string invoke_echo(rpc::PoolConnection& c, rpc::schema::Vm::Client& vm, const std::string& text) {
  auto req = vm.invokeRequest();
  req.setFunction("echo");
  req.setPayload(kj::arrayPtr(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
  req.setTimeoutMs(10000);
  auto out = req.send().wait(c.wait_scope());
  return {reinterpret_cast<const char*>(out.getPayload().begin()), out.getPayload().size()};
}

// The exception a call throws, or an empty Maybe.
template <typename Fn>
kj::Maybe<kj::Exception> error_of(Fn&& fn) {
  return kj::runCatchingExceptions(std::forward<Fn>(fn));
}

// A clone of template `name`, leased for `lease_ms`; waits up to
// `timeout_ms` for one.
inline rpc::schema::Vm::Client acquire(rpc::PoolConnection& c, const char* name = "mini", uint64_t lease_ms = 10000,
                                       uint64_t timeout_ms = 5000) {
  auto req = c.pool().acquireRequest();
  req.setTemplate(name);
  req.setLeaseMs(lease_ms);
  req.setTimeoutMs(timeout_ms);
  return req.send().wait(c.wait_scope()).getVm();
}

// Template `name`'s leased clones, as stats gives them (a failure, and ~0u,
// when stats has no such template).
inline uint32_t leased(rpc::PoolConnection& c, const std::string& name = "mini") {
  auto s = c.pool().statsRequest().send().wait(c.wait_scope());
  for (auto t : s.getStats().getTemplates()) {
    if (t.getName() == name.c_str()) return t.getLeased();
  }
  ADD_FAILURE() << "no template " << name << " in stats";
  return ~0u;
}

// Polls until template `name` has `n` leased clones; false if the timeout
// passes first.
inline bool wait_leased(rpc::PoolConnection& c, uint32_t n, const std::string& name = "mini",
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  for (auto deadline = std::chrono::steady_clock::now() + timeout; std::chrono::steady_clock::now() < deadline;) {
    if (leased(c, name) == n) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

// Checks that `call` throws FAILED with `needle` in the message; `what` names
// the case in the failure output.
template <typename Call>
void expect_failed(const char* what, const std::string& needle, Call&& call) {
  KJ_IF_MAYBE (e, error_of(call)) {
    EXPECT_EQ(e->getType(), kj::Exception::Type::FAILED) << what << ": " << rpc::error_message(*e);
    EXPECT_NE(rpc::error_message(*e).find(needle), std::string::npos) << what << ": " << rpc::error_message(*e);
  } else {
    ADD_FAILURE() << what << " was accepted";
  }
}

// A call for expect_failed: acquire with these arguments.
inline auto acquire_with(rpc::PoolConnection& c, const char* name, uint64_t lease_ms, uint64_t timeout_ms) {
  return [&c, name, lease_ms, timeout_ms] { acquire(c, name, lease_ms, timeout_ms); };
}

// The acquire argument checks every server makes, each FAILED and named:
// `invalid_name` is a template name that is not valid; `unknown_needle` is
// what the message for the unknown template "nope" must contain.
inline void expect_bad_acquires_failed(rpc::PoolConnection& c, const char* invalid_name,
                                       const std::string& unknown_needle) {
  expect_failed("empty template", "template", acquire_with(c, "", 1000, 0));
  expect_failed("invalid template", "template", acquire_with(c, invalid_name, 1000, 0));
  expect_failed("unknown template", unknown_needle, acquire_with(c, "nope", 1000, 0));
  expect_failed("lease too long", "leaseMs", acquire_with(c, "mini", 3600001, 0));
  expect_failed("timeout too long", "timeoutMs", acquire_with(c, "mini", 1000, 60001));
}

}  // namespace thaw::testing
