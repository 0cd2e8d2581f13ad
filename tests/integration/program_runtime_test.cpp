// The mini guest's function runtime on real programs in real VMs: the real
// `thaw run --json` on Debian's static busybox (answers compared with the
// host's own busybox on the same input), on tests/programs' test program in
// each of its modes (pristine state, every limit, isolation of the kernel,
// unknown syscalls, randomness, argv/env/files), and on a static Lua
// interpreter running a handler script. Each test skips with the reason
// where there is no /dev/kvm (or no busybox, no Lua library).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/integration/thaw_cli_runner.h"
#include "tests/kvm_available.h"
#include "tests/temp_dir.h"

namespace thaw::testing {
namespace {

constexpr const char* kBusybox = "/bin/busybox";

// One `thaw run --json`: its exit code, the parsed JSON (null when stdout
// was not JSON, e.g. for a failed cold start) and its stderr.
struct RunResult {
  int exit_code = -1;
  nlohmann::json json;
  std::string stdout_text;
  std::string stderr_text;
};

// Small counts: under nested emulation a request costs ~100x. The payload
// travels in a file so that any bytes work.
RunResult thaw_run(const std::string& program, const std::vector<std::string>& extra, const std::string& payload,
                   unsigned repeat = 2, unsigned cold_runs = 1) {
  TempDir dir("thaw-run-test");
  const std::string payload_path = dir.path() + "/payload";
  std::ofstream(payload_path, std::ios::binary) << payload;
  std::vector<std::string> args = {"run",          "--json",       "--program",           program,
                                   "--payload-file", payload_path, "--repeat",            std::to_string(repeat),
                                   "--cold-runs",  std::to_string(cold_runs), "--console", dir.path() + "/console"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::string line = THAW_CLI;
  for (const auto& a : args) line += " " + shell_quote(a);
  line += " 2>" + shell_quote(dir.path() + "/stderr");
  auto r = run_shell(line);
  RunResult out;
  out.exit_code = r.exit_code;
  out.stdout_text = r.output;
  out.stderr_text = read_text(dir.path() + "/stderr") + "\nguest console:\n" + read_text(dir.path() + "/console");
  out.json = nlohmann::json::parse(r.output, nullptr, /*allow_exceptions=*/false);
  return out;
}

// `PROGRAM ARGS` on the host with `payload` as stdin: its stdout.
std::string host_output(const std::string& command, const std::string& payload) {
  TempDir dir("thaw-host-run");
  const std::string payload_path = dir.path() + "/payload";
  std::ofstream(payload_path, std::ios::binary) << payload;
  return run_shell(command + " <" + shell_quote(payload_path)).output;
}

#define THAW_REQUIRE_BUSYBOX()                                                                  \
  do {                                                                                          \
    if (::access(kBusybox, X_OK) != 0) GTEST_SKIP() << kBusybox << " is missing (apt install busybox-static)"; \
  } while (0)

// The guest's answer must be the host busybox's, and the same in every request.
void expect_like_host(const std::vector<std::string>& applet_args, const std::string& payload) {
  std::vector<std::string> extra;
  std::string host_command = kBusybox;
  for (const auto& a : applet_args) {
    extra.insert(extra.end(), {"--arg", a});
    host_command += " " + shell_quote(a);
  }
  const std::string expected = host_output(host_command, payload);
  ASSERT_FALSE(expected.empty()) << host_command;
  auto r = thaw_run(kBusybox, extra, payload, /*repeat=*/3);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  ASSERT_TRUE(r.json.is_object()) << r.stdout_text;
  EXPECT_EQ(r.json["stdout_text"], expected) << r.stderr_text;
  EXPECT_EQ(r.json["outcome"], "exited with status 0");
  EXPECT_EQ(r.json["cold_matches_warm"], true);
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
  EXPECT_EQ(r.json["unknown_syscalls"].size(), 0u) << r.json["unknown_syscalls"].dump();
}

std::string sample_text() {
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + " value " + std::to_string(i * 7 % 13) + "\n";
  return text;
}

TEST(ProgramRuntimeBusybox, Sha256sum) {
  THAW_REQUIRE_KVM();
  THAW_REQUIRE_BUSYBOX();
  expect_like_host({"sha256sum"}, sample_text());
}

TEST(ProgramRuntimeBusybox, Base64) {
  THAW_REQUIRE_KVM();
  THAW_REQUIRE_BUSYBOX();
  std::string binary;
  for (int i = 0; i < 3000; ++i) binary += static_cast<char>(i * 31 % 256);
  expect_like_host({"base64"}, binary);
}

TEST(ProgramRuntimeBusybox, WcBytes) {
  THAW_REQUIRE_KVM();
  THAW_REQUIRE_BUSYBOX();
  expect_like_host({"wc", "-c"}, sample_text());
}

TEST(ProgramRuntimeBusybox, AwkProgram) {
  THAW_REQUIRE_KVM();
  THAW_REQUIRE_BUSYBOX();
  expect_like_host({"awk", "{ sum += $4; n[$4]++ } END { printf \"%d %d %d\\n\", NR, sum, n[3] }"}, sample_text());
}

// ---- tests/programs/thaw_test_program.c, one mode per test ---------------

RunResult test_program(const std::vector<std::string>& args, const std::string& payload, unsigned repeat = 2,
                       std::vector<std::string> options = {}) {
  for (const auto& a : args) options.insert(options.end(), {"--arg", a});
  return thaw_run(THAW_TEST_PROGRAM, options, payload, repeat);
}

// Every request starts from the ready point's snapshot: a global and a /tmp
// file counted up by each request read 1 every time, over 100 requests.
TEST(ProgramRuntime, CounterIsPristineOverHundredRequests) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"counter"}, "", /*repeat=*/100);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], "global 1 file 1\n");
  EXPECT_EQ(r.json["cold_matches_warm"], true);
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
  EXPECT_EQ(r.json["warm"]["samples_ms"].size(), 100u);
}

TEST(ProgramRuntime, EchoesStdin) {
  THAW_REQUIRE_KVM();
  const std::string payload = "hello, thaw\nsecond line\n";
  auto r = test_program({"echo"}, payload);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], payload);
  EXPECT_EQ(r.json["status"], 0);
}

// Ring 3 runs with interrupts off: only the host's deadline ends it.
TEST(ProgramRuntime, LoopForeverTimesOut) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"loop"}, "x", 1, {"--timeout-ms", "1500"});
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("timed out"), std::string::npos) << r.stderr_text;
}

TEST(ProgramRuntime, TenMebibytesOfStdoutHitTheLimit) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"flood"}, "");
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  ASSERT_TRUE(r.json.is_object()) << r.stdout_text.substr(0, 200) << r.stderr_text;
  EXPECT_EQ(r.json["outcome"], "stdout over 1 MiB: killed");
  EXPECT_EQ(r.json["stdout_text"].get<std::string>().size(), 1u << 20);
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
}

TEST(ProgramRuntime, NullDereferenceIsSigsegvAtZero) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"null"}, "");
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  ASSERT_TRUE(r.json.is_object()) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["status"], 11);
  const std::string outcome = r.json["outcome"];
  EXPECT_EQ(outcome.rfind("killed by SIGSEGV at rip 0x", 0), 0u) << outcome;
  EXPECT_NE(outcome.find("(address 0x0)"), std::string::npos) << outcome;
}

// The kernel's image and the control page are supervisor-only: the write
// faults, and every later request (a reset clone) faults the same way
// instead of finding a damaged kernel.
void expect_poke_faults(const std::string& address) {
  auto r = test_program({"poke", address}, "", /*repeat=*/3);
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  ASSERT_TRUE(r.json.is_object()) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["status"], 11);
  EXPECT_EQ(r.json["stdout_text"], "");
  const std::string outcome = r.json["outcome"];
  EXPECT_NE(outcome.find("SIGSEGV"), std::string::npos) << outcome;
  EXPECT_NE(outcome.find("(address 0x" + address + ")"), std::string::npos) << outcome;
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
}

TEST(ProgramRuntime, WriteToKernelImageFaults) {
  THAW_REQUIRE_KVM();
  expect_poke_faults("100000");
}

TEST(ProgramRuntime, WriteToControlPageFaults) {
  THAW_REQUIRE_KVM();
  expect_poke_faults("80000");
}

// Ring-3 copies reach the files and the request through a read-only alias
// above 4 GiB (guest/mini/program_user_alias.c): the program may read its
// own request there but never change it. With 128 MiB and no files the
// mailbox is at 0x7def000 and its stdin at 0x7df0000, which the alias
// shows at 0x100400000 + 0x1f0000.
TEST(ProgramRuntime, TheRequestAliasIsReadableButNotWritable) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"peek", "1005f0000"}, "hi");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], "read 68 at 0x1005f0000\n") << "the first stdin byte, 'h'";
  expect_poke_faults("1005f0000");
}

TEST(ProgramRuntime, ReadOfKernelPageTablesFaults) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"peek", "9000"}, "");  // the boot page tables (vmm/x86_64 layout)
  EXPECT_EQ(r.exit_code, 1) << r.stderr_text;
  ASSERT_TRUE(r.json.is_object()) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["status"], 11);
  EXPECT_NE(r.json["outcome"].get<std::string>().find("(address 0x9000)"), std::string::npos) << r.json["outcome"];
}

// Out of guest memory is malloc's NULL (mmap's ENOMEM), not a fault.
TEST(ProgramRuntime, OutOfMemoryIsEnomem) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"oom"}, "", 1, {"--timeout-ms", "60000"});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], "malloc failed after 16+ MiB: Cannot allocate memory\n");
}

// No ready point, so no snapshot: thaw run fails and shows why, with what
// the program wrote to stderr.
TEST(ProgramRuntime, ExitBeforeReadingStdinFailsWithItsStderr) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"early-exit"}, "");
  EXPECT_EQ(r.exit_code, 1) << r.stdout_text << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("did not reach its ready point"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("ended before reading stdin"), std::string::npos) << r.stderr_text;
  EXPECT_NE(r.stderr_text.find("early-exit: missing configuration, giving up"), std::string::npos) << r.stderr_text;
}

TEST(ProgramRuntime, UnknownSyscallsAreListedAndAnsweredEnosys) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"unknown-syscall"}, "");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], "400: -1 ENOSYS\nio_uring_setup: -1 ENOSYS\n");
  const auto& unknown = r.json["unknown_syscalls"];
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), 400), unknown.end()) << unknown.dump();
  EXPECT_NE(std::find(unknown.begin(), unknown.end(), 425), unknown.end()) << unknown.dump();
}

// What fuzz_guest_syscalls found, made by a real program in a real guest:
// the break refused over the stack past a MAP_FIXED mapping there,
// open("", O_CREAT) is ENOENT, and pwrite/pread through a /tmp file's own
// storage behave as memmove (the guest's backward copy included). Every
// request (a reset clone) answers the same.
TEST(ProgramRuntime, EdgeCasesFoundByFuzzingBehaveAsOnLinux) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"edges"}, "", /*repeat=*/2);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"].get<std::string>(),
            "brk over the stack: refused\n"
            "open(\"\", O_CREAT): ENOENT\n"
            "pwrite from the file's own storage, upward: ok\n"
            "pwrite from the file's own storage, downward: ok\n"
            "pread into the file's own storage: ok\n");
  EXPECT_EQ(r.json["cold_matches_warm"], true);
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
}

// thaw run writes a fresh seed into the control page before each request,
// so getrandom differs between requests of the same snapshot.
TEST(ProgramRuntime, GetrandomDiffersBetweenRequests) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"random"}, "", /*repeat=*/3);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const std::string bytes = r.json["stdout_text"];
  EXPECT_EQ(bytes.size(), 33u) << bytes;
  EXPECT_EQ(r.json["cold_matches_warm"], false) << bytes;
  EXPECT_EQ(r.json["warm_responses_differing"], 2) << bytes;
}

// ... and the wall clock of the request, not of the snapshot (or 1970).
TEST(ProgramRuntime, WallClockIsTheRequests) {
  THAW_REQUIRE_KVM();
  auto r = test_program({"clock"}, "");
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const long long guest = std::stoll(r.json["stdout_text"].get<std::string>());
  const long long host = static_cast<long long>(::time(nullptr));
  EXPECT_LT(std::llabs(guest - host), 600) << "guest " << guest << " host " << host;
}

TEST(ProgramRuntime, SeesArgvEnvAndShippedFiles) {
  THAW_REQUIRE_KVM();
  TempDir files("thaw-run-files");
  ASSERT_EQ(::mkdir((files.path() + "/data").c_str(), 0755), 0);
  std::ofstream(files.path() + "/data/hello.txt") << "first line\nsecond line\n";
  auto r = test_program({"args", "-x", "two words", "/data/hello.txt"}, "",
                        2, {"--env", "GREETING=hi there", "--files", files.path()});
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  const std::string out = r.json["stdout_text"];
  EXPECT_NE(out.find("argv[1]=args\nargv[2]=-x\nargv[3]=two words\nargv[4]=/data/hello.txt\n"), std::string::npos)
      << out;
  EXPECT_NE(out.find("env GREETING=hi there\n"), std::string::npos) << out;
  EXPECT_NE(out.find("file first line\nfile second line\n"), std::string::npos) << out;
}

// ---- guest/runtimes/lua: a static Lua interpreter and a handler script ---

TEST(ProgramRuntimeLua, HandlerScriptAnswersEachRequest) {
  THAW_REQUIRE_KVM();
#ifndef THAW_LUA
  GTEST_SKIP() << "thaw-lua was not built: liblua5.4.a is missing (apt install liblua5.4-dev)";
#else
  TempDir files("thaw-lua-files");
  // A module loaded at start-up (before the ready point), used per request.
  std::ofstream(files.path() + "/words.lua") << "local M = {}\n"
                                                "function M.count(s) local n = 0\n"
                                                "  for _ in s:gmatch('%S+') do n = n + 1 end return n end\n"
                                                "return M\n";
  std::ofstream(files.path() + "/handler.lua") << "package.path = '/?.lua'\n"
                                                  "local words = require('words')\n"
                                                  "calls = 0\n"
                                                  "return function(input)\n"
                                                  "  calls = calls + 1\n"
                                                  "  return string.format('%s|%d words|call %d\\n',\n"
                                                  "    input:upper(), words.count(input), calls)\n"
                                                  "end\n";
  auto r = thaw_run(THAW_LUA, {"--files", files.path(), "--arg", "/handler.lua"}, "hello lua in thaw", 3);
  ASSERT_EQ(r.exit_code, 0) << r.stdout_text << r.stderr_text;
  EXPECT_EQ(r.json["stdout_text"], "HELLO LUA IN THAW|4 words|call 1\n");
  EXPECT_EQ(r.json["warm_responses_differing"], 0);
  EXPECT_EQ(r.json["unknown_syscalls"].size(), 0u) << r.json["unknown_syscalls"].dump();
#endif
}

}  // namespace
}  // namespace thaw::testing
