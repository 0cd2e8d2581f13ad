// The fill rate of a template spread over several worker processes while
// every shard restores at once. A spread pool's overall fill also waits for
// the later shards' workers: they start only once shard 1 has made the
// template, then load it and prepare their VM shells. Counting restores
// only in the stretch where every shard was filling tells the restore rate
// apart from that start-up. Pure: samples in, the stretch out.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

namespace thaw::bench {

struct WarmSample {
  double at_s = 0;    // since the fill began
  uint32_t warm = 0;  // the shard's warm clones then
};

struct ParallelFill {
  double from_s = 0;      // the last shard's first warm clone
  double to_s = 0;        // the first shard with all of its share warm
  uint32_t restored = 0;  // warm clones added over all shards in between
  double per_second = 0;
};

// The first sample's time with at least `n` warm (nullopt: none had).
std::optional<double> first_at_least(const std::vector<WarmSample>& samples, uint32_t n);

// Warm at time `t`: the last sample at or before it (0 before the first).
uint32_t warm_at(const std::vector<WarmSample>& samples, double t);

// `shards[k]`: shard k's samples in time order; `targets[k]`: its share of
// the clones. nullopt when there is no such stretch: fewer than two shards,
// a shard that never had a warm clone or never filled, one that was full
// before the last had begun, or mismatched sizes.
std::optional<ParallelFill> parallel_fill(const std::vector<std::vector<WarmSample>>& shards,
                                          const std::vector<uint32_t>& targets);

}  // namespace thaw::bench
