#include "rpc/convert.h"

#include "base/linux_syscall_names.h"

namespace thaw::rpc {

std::string to_string(capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); }

pool::PoolPolicy from_schema(schema::PoolPolicy::Reader in) {
  pool::PoolPolicy out;
  out.min_warm = in.getMinWarm();
  out.max_warm = in.getMaxWarm();
  out.memory_budget_mib = in.getMemoryBudgetMib();
  return out;
}

pool::LatencySummary from_schema(schema::LatencySummary::Reader in) {
  return {in.getCount(), in.getMinMs(), in.getMedianMs(), in.getP99Ms()};
}

pool::TemplateSpec from_schema(schema::TemplateSpec::Reader in) {
  pool::TemplateSpec out;
  out.name = to_string(in.getName());
  out.kernel = to_string(in.getKernel());
  out.initrd = to_string(in.getInitrd());
  out.cmdline = to_string(in.getCmdline());
  out.mem_mib = in.getMemMib();
  out.vcpus = in.getVcpus();
  out.program = to_string(in.getProgram());
  for (auto a : in.getArgs()) out.args.push_back(to_string(a));
  for (auto e : in.getEnv()) out.env.push_back(to_string(e));
  out.files_dir = to_string(in.getFilesDir());
  switch (in.getGuest()) {
    case schema::Guest::MINI: out.guest = pool::GuestKind::kMini; break;
    case schema::Guest::LINUX: out.guest = pool::GuestKind::kLinux; break;
    default:  // a newer client's guest this daemon does not know
      throw pool::BadArgument("spec.guest: unknown guest " + std::to_string(static_cast<unsigned>(in.getGuest())));
  }
  return out;
}

pool::TemplateInfo from_schema(schema::TemplateInfo::Reader in) {
  pool::TemplateInfo out;
  out.name = to_string(in.getName());
  out.spec = from_schema(in.getSpec());
  out.policy = from_schema(in.getPolicy());
  out.snapshot_dir = to_string(in.getSnapshotDir());
  out.warm = in.getWarm();
  out.leased = in.getLeased();
  out.target_warm = in.getTargetWarm();
  out.cold_boot_ms = in.getColdBootMs();
  out.worker_pid = in.getWorkerPid();
  out.workers = in.getWorkers();
  out.direct_socket = to_string(in.getDirectSocket());
  out.shard = to_string(in.getShard());
  for (auto path : in.getShardSockets()) out.shard_sockets.push_back(to_string(path));
  return out;
}

// A histogram from a newer or older peer may carry another bucket count:
// the buckets both know are kept, the rest stay empty.
pool::LatencyHistogram from_schema(schema::LatencyHistogram::Reader in) {
  pool::LatencyHistogram out;
  auto buckets = in.getAtMost();
  for (unsigned i = 0; i < buckets.size() && i < out.at_most.size(); ++i) out.at_most[i] = buckets[i];
  out.count = in.getCount();
  out.sum_seconds = in.getSumSeconds();
  return out;
}

void to_schema(const pool::LatencyHistogram& in, schema::LatencyHistogram::Builder out) {
  auto buckets = out.initAtMost(static_cast<unsigned>(in.at_most.size()));
  for (unsigned i = 0; i < buckets.size(); ++i) buckets.set(i, in.at_most[i]);
  out.setCount(in.count);
  out.setSumSeconds(in.sum_seconds);
}

pool::PoolStats::PerTemplate from_schema(schema::TemplateStats::Reader in) {
  pool::PoolStats::PerTemplate out;
  out.name = to_string(in.getName());
  out.warm = in.getWarm();
  out.leased = in.getLeased();
  out.target_warm = in.getTargetWarm();
  out.acquires = in.getAcquires();
  out.hits = in.getHits();
  out.misses = in.getMisses();
  out.overloaded = in.getOverloaded();
  out.restores = in.getRestores();
  out.resets = in.getResets();
  out.reset_failures = in.getResetFailures();
  out.destroyed = in.getDestroyed();
  out.expired_leases = in.getExpiredLeases();
  out.private_memory_mib = in.getPrivateMemoryMib();
  out.restore_failures = in.getRestoreFailures();
  out.scale_ups = in.getScaleUps();
  out.scale_downs = in.getScaleDowns();
  out.restore_ms = from_schema(in.getRestoreMs());
  out.reset_ms = from_schema(in.getResetMs());
  out.restore_seconds = from_schema(in.getRestoreSeconds());
  out.reset_seconds = from_schema(in.getResetSeconds());
  for (auto u : in.getUnknownSyscalls()) out.unknown_syscalls.push_back({u.getNumber(), u.getRequests()});
  out.shard = to_string(in.getShard());
  return out;
}

pool::PoolStats from_schema(schema::PoolStats::Reader in) {
  pool::PoolStats out;
  for (auto t : in.getTemplates()) out.templates.push_back(from_schema(t));
  return out;
}

void to_schema(const pool::PoolPolicy& in, schema::PoolPolicy::Builder out) {
  out.setMinWarm(in.min_warm);
  out.setMaxWarm(in.max_warm);
  out.setMemoryBudgetMib(in.memory_budget_mib);
}

void to_schema(const pool::LatencySummary& in, schema::LatencySummary::Builder out) {
  out.setCount(in.count);
  out.setMinMs(in.min_ms);
  out.setMedianMs(in.median_ms);
  out.setP99Ms(in.p99_ms);
}

void to_schema(const pool::TemplateSpec& in, schema::TemplateSpec::Builder out) {
  out.setName(in.name);
  out.setKernel(in.kernel);
  out.setInitrd(in.initrd);
  out.setCmdline(in.cmdline);
  out.setMemMib(in.mem_mib);
  out.setVcpus(in.vcpus);
  if (in.is_linux()) out.setGuest(schema::Guest::LINUX);
  // Left unset for a kernel template: its message is what it was before.
  if (!in.is_program()) return;
  out.setProgram(in.program);
  auto args = out.initArgs(static_cast<unsigned>(in.args.size()));
  for (unsigned i = 0; i < args.size(); ++i) args.set(i, in.args[i]);
  auto env = out.initEnv(static_cast<unsigned>(in.env.size()));
  for (unsigned i = 0; i < env.size(); ++i) env.set(i, in.env[i]);
  out.setFilesDir(in.files_dir);
}

void to_schema(const pool::TemplateInfo& in, schema::TemplateInfo::Builder out) {
  out.setName(in.name);
  to_schema(in.spec, out.initSpec());
  to_schema(in.policy, out.initPolicy());
  out.setSnapshotDir(in.snapshot_dir);
  out.setWarm(in.warm);
  out.setLeased(in.leased);
  out.setTargetWarm(in.target_warm);
  out.setColdBootMs(in.cold_boot_ms);
  out.setWorkerPid(in.worker_pid);
  out.setWorkers(in.workers);
  out.setDirectSocket(in.direct_socket);
  out.setShard(in.shard);
  auto shard_sockets = out.initShardSockets(static_cast<unsigned>(in.shard_sockets.size()));
  for (unsigned i = 0; i < shard_sockets.size(); ++i) shard_sockets.set(i, in.shard_sockets[i]);
}

void to_schema(const pool::PoolStats::PerTemplate& in, schema::TemplateStats::Builder out) {
  out.setName(in.name);
  out.setWarm(in.warm);
  out.setLeased(in.leased);
  out.setTargetWarm(in.target_warm);
  out.setAcquires(in.acquires);
  out.setHits(in.hits);
  out.setMisses(in.misses);
  out.setOverloaded(in.overloaded);
  out.setRestores(in.restores);
  out.setResets(in.resets);
  out.setResetFailures(in.reset_failures);
  out.setDestroyed(in.destroyed);
  out.setExpiredLeases(in.expired_leases);
  out.setPrivateMemoryMib(in.private_memory_mib);
  out.setRestoreFailures(in.restore_failures);
  out.setScaleUps(in.scale_ups);
  out.setScaleDowns(in.scale_downs);
  to_schema(in.restore_ms, out.initRestoreMs());
  to_schema(in.reset_ms, out.initResetMs());
  to_schema(in.restore_seconds, out.initRestoreSeconds());
  to_schema(in.reset_seconds, out.initResetSeconds());
  auto unknown = out.initUnknownSyscalls(static_cast<unsigned>(in.unknown_syscalls.size()));
  for (size_t i = 0; i < in.unknown_syscalls.size(); ++i) {
    unknown[i].setNumber(in.unknown_syscalls[i].number);
    unknown[i].setName(linux_syscall_name(in.unknown_syscalls[i].number));
    unknown[i].setRequests(in.unknown_syscalls[i].requests);
  }
  out.setShard(in.shard);
}

void to_schema(const pool::PoolStats& in, schema::PoolStats::Builder out) {
  auto list = out.initTemplates(static_cast<unsigned>(in.templates.size()));
  for (unsigned i = 0; i < list.size(); ++i) to_schema(in.templates[i], list[i]);
}

}  // namespace thaw::rpc
