// thaw_bench_targets: reads one run's thaw_bench_restore and
// thaw_bench_density --json results and says which of issue 12's targets
// they meet (bench/fast_path_targets.sh runs all three).
#include <cstdio>
#include <fstream>
#include <string>

#include <CLI/CLI.hpp>

#include "bench/fast_path_targets.h"

namespace {

nlohmann::json read_json(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(std::string(what) + " " + path + ": cannot be opened");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string(what) + " " + path + ": not JSON (" + e.what() + ")");
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks one run's restore and density results against the restore fast path's targets "
               "(restore median <= 1 ms and p99 <= 3 ms, answered <= 2 ms, QEMU ratio >= 10x, reset <= 100 us, "
               ">= 500 restores/s, 1,000 warm clones in <= 1 GiB with acquire p99 <= 1 ms)"};
  std::string restore_path, density_path, json_path;
  app.add_option("--restore", restore_path, "thaw_bench_restore --json result")->required();
  app.add_option("--density", density_path, "thaw_bench_density --json result (of --clones 1000)")->required();
  app.add_option("--json", json_path, "Also write the verdicts, with both results' environments, to this file");
  CLI11_PARSE(app, argc, argv);
  try {
    auto restore = read_json(restore_path, "--restore");
    auto density = read_json(density_path, "--density");
    auto checks = thaw::bench::check_fast_path_targets(restore, density);
    std::printf("Restore fast path and density targets (%s, %s)\n", restore_path.c_str(), density_path.c_str());
    std::fputs(thaw::bench::describe(checks).c_str(), stdout);
    if (!json_path.empty()) {
      nlohmann::json out{{"benchmark", "fast_path_targets"},
                         {"targets", thaw::bench::to_json(checks)},
                         {"restore_environment", restore.value("environment", nlohmann::json::object())},
                         {"density_environment", density.value("environment", nlohmann::json::object())}};
      std::ofstream file(json_path);
      file << out.dump(2) << "\n";
      if (!file) {
        std::fprintf(stderr, "--json %s: cannot be written\n", json_path.c_str());
        return 1;
      }
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  return 0;
}
