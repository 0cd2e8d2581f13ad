#include "bench/fast_path_targets.h"

#include <fmt/format.h>

#include <stdexcept>

namespace thaw::bench {

namespace {

using nlohmann::json;

void expect_benchmark(const json& doc, const std::string& name) {
  if (!doc.is_object() || !doc.contains("benchmark") || doc["benchmark"] != name) {
    throw std::invalid_argument("not a thaw_bench_" + name + " --json result (its \"benchmark\" is not \"" + name +
                                "\")");
  }
}

std::optional<double> row_figure(const json& doc, const std::string& row, const char* figure) {
  if (!doc.contains("rows") || !doc["rows"].contains(row)) return std::nullopt;
  const json& r = doc["rows"][row];
  if (!r.contains(figure) || !r[figure].is_number()) return std::nullopt;
  return r[figure].get<double>();
}

std::optional<double> value(const json& doc, const std::string& name) {
  if (!doc.contains("values") || !doc["values"].contains(name) || !doc["values"][name].is_number()) {
    return std::nullopt;
  }
  return doc["values"][name].get<double>();
}

TargetCheck at_most(std::string what, std::optional<double> v, double limit, std::string unit, std::string source) {
  TargetCheck c{std::move(what), fmt::format("<= {:g} {}", limit, unit), v, unit, std::move(source), false};
  c.met = v.has_value() && *v <= limit;
  return c;
}

TargetCheck at_least(std::string what, std::optional<double> v, double limit, std::string unit, std::string source) {
  TargetCheck c{std::move(what), fmt::format(">= {:g} {}", limit, unit), v, unit, std::move(source), false};
  c.met = v.has_value() && *v >= limit;
  return c;
}

}  // namespace

std::vector<TargetCheck> check_fast_path_targets(const json& restore, const json& density) {
  expect_benchmark(restore, "restore");
  expect_benchmark(density, "density");
  std::string backend;
  if (restore.contains("environment") && restore["environment"].contains("kvm_backend") &&
      restore["environment"]["kvm_backend"].is_string()) {
    backend = restore["environment"]["kvm_backend"].get<std::string>();
  }
  const std::string way = backend == "kvm_pvm" ? "private, prepared shell" : "private";
  const std::string entry = way + ": request -> first guest instruction";
  const std::string answered = way + ": request -> guest answered";
  std::vector<TargetCheck> out;
  out.push_back(at_most("restore -> first guest instruction, median", row_figure(restore, entry, "median_ms"), 1,
                        "ms", entry));
  out.push_back(at_most("restore -> first guest instruction, p99", row_figure(restore, entry, "p99_ms"), 3, "ms",
                        entry));
  out.push_back(at_most("restore -> guest answered, median", row_figure(restore, answered, "median_ms"), 2, "ms",
                        answered));
  out.push_back(at_least("QEMU -incoming over thaw restore, medians", value(restore, "qemu_over_thaw_restore_median_ratio"),
                         10, "x", "qemu_over_thaw_restore_median_ratio"));
  out.push_back(at_most("reset in place, nothing dirtied, median", row_figure(restore, "0 MiB dirty", "median_ms"),
                        0.1, "ms", "0 MiB dirty"));
  // The fill's rate depends on how many refill threads restored in parallel.
  std::string fill_source = "fill_restores_per_second";
  if (auto threads = value(density, "refill_threads")) {
    fill_source += " (" + std::to_string(static_cast<unsigned>(*threads)) + " refill threads)";
  }
  out.push_back(at_least("restores into a growing pool", value(density, "fill_restores_per_second"), 500, "/s",
                         fill_source));
  // A spread pool's overall rate includes its later shards' start-up; its
  // rate while every shard restored is judged beside it, where measured.
  if (auto every_shard = value(density, "fill_restores_per_second_every_shard_restoring")) {
    out.push_back(at_least("the same while every shard restores", every_shard, 500, "/s",
                           "fill_restores_per_second_every_shard_restoring"));
  }
  // The density goals are for 1,000 clones: fewer prove nothing either way.
  const auto clones = value(density, "clones");
  const bool at_scale = clones.has_value() && *clones >= 1000;
  auto scaled = [&](std::optional<double> v) { return at_scale ? v : std::nullopt; };
  out.push_back(at_most("host memory of 1,000 idle warm clones", scaled(value(density, "host_memory_used_mib")), 1024,
                        "MiB", "host_memory_used_mib (clones >= 1000)"));
  out.push_back(at_most("acquire p99 at 100/s with 1,000 warm",
                        scaled(row_figure(density, "acquire (RPC until the clone runs)", "p99_ms")), 1, "ms",
                        "acquire (RPC until the clone runs) (clones >= 1000)"));
  return out;
}

std::string describe(const std::vector<TargetCheck>& checks) {
  std::string text;
  size_t met = 0;
  for (const auto& c : checks) {
    met += c.met ? 1 : 0;
    text += fmt::format("  {:<46} {:>12} {:<10} {}\n", c.what,
                        c.value ? fmt::format("{:.3f} {}", *c.value, c.unit) : std::string("not measured"), c.goal,
                        c.met ? "met" : "missed");
  }
  text += fmt::format("  {} of {} targets met\n", met, checks.size());
  return text;
}

nlohmann::json to_json(const std::vector<TargetCheck>& checks) {
  json out = json::array();
  for (const auto& c : checks) {
    json j{{"what", c.what}, {"goal", c.goal}, {"unit", c.unit}, {"source", c.source}, {"met", c.met}};
    j["value"] = c.value ? json(*c.value) : json(nullptr);
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace thaw::bench
