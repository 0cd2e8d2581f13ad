// Caches KVM_GET_SUPPORTED_CPUID across processes.
//
// Why: on nested hosts the query executes ~76 CPUID instructions in the
// host kernel, each a trap to the outer hypervisor: about 1 ms, a third of
// a whole-process cold boot. The answer depends only on the host kernel,
// the KVM module and its parameters, so it is cached under a key made of
// exactly those (boot id, kernel release, and the KVM modules' sysfs inodes,
// which change on reload). The cache file is untrusted input:
// anything malformed is ignored and recomputed.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "vmm/kvm/kvm_system.h"

namespace thaw::vmm {

// Where the cache lives: $THAW_CACHE_DIR, else /run/thaw for root, else
// $XDG_RUNTIME_DIR/thaw; empty when caching is off (THAW_CPUID_CACHE=0).
std::string default_cpuid_cache_dir();

// A key for this host's current KVM; changes when any input above changes.
std::string host_kvm_key();

// File image: magic, entry count, entries. Pure.
std::vector<uint8_t> encode_cpuid_cache(std::span<const kvm_cpuid_entry2> entries);
// Returns nothing for a malformed image (bad magic, size, count > 256).
std::optional<std::vector<kvm_cpuid_entry2>> decode_cpuid_cache(std::span<const uint8_t> image);

// The cached answer for this host, if there is a valid one (no ioctl).
std::optional<std::vector<kvm_cpuid_entry2>> load_cached_cpuid(const std::string& cache_dir);

// The supported CPUID, from the cache when it holds this host's answer,
// otherwise from KVM (and then stored). `cache_dir` empty: no cache.
std::vector<kvm_cpuid_entry2> supported_cpuid_cached(const kvm::KvmSystem& kvm, const std::string& cache_dir);

}  // namespace thaw::vmm
