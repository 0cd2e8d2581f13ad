#include "pool/memory_usage.h"

#include <fcntl.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>

#include "base/unique_fd.h"
#include "vmm/memory/private_pages.h"

namespace thaw::pool {

namespace {

bool parse_hex(std::string_view s, uintptr_t& out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out, 16);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

// "Private_Dirty:        12 kB" -> 12288
uint64_t parse_kb_field(std::string_view line) {
  auto colon = line.find(':');
  if (colon == std::string_view::npos) return 0;
  std::string_view rest = line.substr(colon + 1);
  auto first = rest.find_first_not_of(' ');
  if (first == std::string_view::npos) return 0;
  rest = rest.substr(first);
  uint64_t kb = 0;
  auto r = std::from_chars(rest.data(), rest.data() + rest.size(), kb);
  if (r.ec != std::errc()) return 0;
  return kb * 1024;
}

}  // namespace

std::vector<uint64_t> private_bytes_in(std::string_view smaps, std::span<const HostRange> ranges) {
  std::vector<uint64_t> out(ranges.size(), 0);
  // Ranges sorted by start, with their original index, for a binary search per mapping.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a].start < ranges[b].start; });

  long current = -1;  // index into `ranges` of the mapping being read, -1 for none of ours
  size_t pos = 0;
  while (pos < smaps.size()) {
    size_t end = smaps.find('\n', pos);
    if (end == std::string_view::npos) end = smaps.size();
    std::string_view line = smaps.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    // A mapping header starts with "start-end " in hex; field lines start with a capitalised name.
    auto dash = line.find('-');
    auto space = line.find(' ');
    uintptr_t start = 0;
    if (dash != std::string_view::npos && space != std::string_view::npos && dash < space &&
        parse_hex(line.substr(0, dash), start)) {
      current = -1;
      auto it = std::upper_bound(order.begin(), order.end(), start,
                                 [&](uintptr_t v, size_t idx) { return v < ranges[idx].start; });
      if (it != order.begin()) {
        size_t idx = *std::prev(it);
        if (start >= ranges[idx].start && start < ranges[idx].end) current = static_cast<long>(idx);
      }
      continue;
    }
    if (current < 0) continue;
    // Anonymous pages of a private file mapping are its copy-on-write
    // copies; "Private_Clean" would also count file pages only this
    // process maps, which are shared page cache all the same.
    if (line.starts_with("Anonymous:") || line.starts_with("Swap:")) {
      out[static_cast<size_t>(current)] += parse_kb_field(line);
    }
  }
  return out;
}

std::optional<PrivateMemorySample> measure_private_memory(std::span<const HostRange> ranges) {
  UniqueFd pagemap(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
  if (pagemap.valid()) {
    PrivateMemorySample sample{std::vector<uint64_t>(ranges.size(), 0), PrivateMemorySource::kPagemapScan};
    std::vector<vmm::PageRun> runs;
    bool scanned = true;
    for (size_t i = 0; i < ranges.size() && scanned; ++i) {
      auto* base = reinterpret_cast<uint8_t*>(ranges[i].start);
      scanned = vmm::scan_private_pages(base, ranges[i].end - ranges[i].start, runs, pagemap.get());
      for (const auto& run : runs) sample.bytes[i] += run.length;
    }
    if (scanned) return sample;
  }
  return measure_private_memory_from_smaps(ranges);
}

std::optional<PrivateMemorySample> measure_private_memory_from_smaps(std::span<const HostRange> ranges) {
  std::string smaps = read_self_smaps();
  if (smaps.empty()) return std::nullopt;
  return PrivateMemorySample{private_bytes_in(smaps, ranges), PrivateMemorySource::kSmaps};
}

std::string read_self_smaps() {
  std::ifstream in("/proc/self/smaps");
  if (!in) return {};
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace thaw::pool
