// The pool manager: templates (cold boot + snapshot), a warm pool of
// restored, paused clones per template, leases handed out on acquire,
// reset in place on release, background refill and an autoscaler.
// Thread-safe: the RPC server calls it from many connections at once.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "pool/pool_shard.h"
#include "pool/pool_types.h"

namespace thaw::pool {

struct PoolManagerConfig {
  std::string template_dir = "/var/lib/thaw/templates";  // one snapshot dir per template
  std::string vsock_dir = "/run/thaw/vsock";              // clone vsock sockets live here
  std::string kvm_device = "/dev/kvm";                    // every VM's KVM (a node with other rights, in tests)
  uint64_t default_lease_ms = 30000;
  uint64_t max_lease_ms = 3600000;
  std::chrono::milliseconds autoscale_period{500};
  // A template's cold boot must reach its boot-complete write within this.
  std::chrono::milliseconds cold_boot_timeout{120000};
  // Warm clones the autoscaler keeps beyond rate x refill time.
  uint32_t autoscale_headroom = 1;
  // A host stall the autoscaler plans for: rate x this more warm clones.
  std::chrono::milliseconds autoscale_stall{20};
  // Threads that restore new clones in parallel; 0: automatic_refill_threads().
  unsigned refill_threads = 0;
  // Threads that reset released clones in place, in parallel.
  unsigned reset_threads = 2;
  // guest/linux's init agent (thaw-init), packed into every Linux
  // template's initramfs. Empty: Linux templates are refused.
  std::string linux_init_agent;
  // Prepared VM shells (vmm/vm_shells.h): kAuto makes them on PVM only,
  // where they were measured (see WarmPool::prepared_shells).
  VmShells vm_shells = VmShells::kAuto;
  // This process's part of each template (pool_shard.h): its pools keep
  // policy_share() of their policy, and only shard 0 writes template.json.
  PoolShard shard;
};

class PoolManager {
 public:
  explicit PoolManager(PoolManagerConfig config);
  ~PoolManager();  // drains: stops refill, destroys clones; snapshots stay on disk
  PoolManager(const PoolManager&) = delete;
  PoolManager& operator=(const PoolManager&) = delete;

  // Cold-boots spec.kernel to its boot-complete write, snapshots it into
  // template_dir/<name> and starts filling its pool. BadArgument for a bad
  // name/spec or an existing name.
  TemplateInfo create_template(const TemplateSpec& spec, const PoolPolicy& policy);
  // Picks up every template already in template_dir (a daemon restart).
  std::vector<std::string> load_existing_templates();
  // Picks up the one template `name` from template_dir (a template worker
  // process serves one). False when it is already loaded; NotFound when
  // there is no such snapshot; the reader's error when it is damaged.
  bool load_template(const std::string& name);
  std::vector<TemplateInfo> list_templates() const;
  // Destroys the template's clones and deletes its snapshot. NotFound.
  void delete_template(const std::string& name);
  // Records `policy` (shard 0 only) and applies this shard's share of it.
  void set_policy(const std::string& name, const PoolPolicy& policy);

  // Resumes a warm clone with a fresh identity; waits up to `timeout` for a
  // refill when none is warm, then throws Overloaded. lease_ms 0 = default.
  LeaseInfo acquire(const std::string& template_name, uint64_t lease_ms, std::chrono::milliseconds timeout);
  // The same when a warm clone is there; nullopt at once when none is. Never
  // waits (the RPC server runs it on its event loop: the fast path).
  std::optional<LeaseInfo> try_acquire(const std::string& template_name, uint64_t lease_ms);
  LeaseInfo renew(uint64_t lease_id, uint64_t lease_ms);
  // Resets the clone in place and returns it to the pool, or destroys it
  // when it crashed or the reset failed. NotFound for an unknown lease.
  void release(uint64_t lease_id);
  LeaseInfo lease_info(uint64_t lease_id) const;
  // Runs `function` in the leased clone's guest agent over vsock. GuestGone
  // when the guest crashed or stopped answering (the clone is then destroyed).
  InvokeResult invoke(uint64_t lease_id, const std::string& function, const std::vector<uint8_t>& payload,
                      std::chrono::milliseconds timeout);

  PoolStats stats() const;

  // Copies guest-physical [guest_addr, guest_addr + len) of the leased
  // clone (at most 1 MiB), e.g. its control page. For tests and
  // diagnostics. NotFound for an unknown lease, BadArgument for a range
  // outside guest RAM.
  std::vector<uint8_t> read_guest_memory(uint64_t lease_id, uint64_t guest_addr, uint64_t len) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace thaw::pool
