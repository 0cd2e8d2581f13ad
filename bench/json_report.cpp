#include "bench/json_report.h"

#include <cstdio>
#include <fstream>


namespace thaw::bench {

nlohmann::json summary_json(const SampleSummary& s) {
  return {{"min_ms", s.min_ms}, {"median_ms", s.median_ms}, {"p99_ms", s.p99_ms}, {"runs", s.runs}};
}

nlohmann::json samples_json(const std::vector<double>& samples_ms) {
  auto out = summary_json(summarize_samples(samples_ms));
  out["samples_ms"] = samples_ms;
  return out;
}

void JsonReport::samples(const std::string& name, const std::vector<double>& samples_ms) {
  root_["rows"][name] = samples_json(samples_ms);
}

void JsonReport::value(const std::string& name, double value) { root_["values"][name] = value; }

bool JsonReport::write(const std::string& path) const {
  if (path.empty()) return true;
  std::ofstream out(path, std::ios::trunc);
  out << root_.dump(2) << "\n";
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

}  // namespace thaw::bench
