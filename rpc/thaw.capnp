@0xa124797dc70e36e8;
# thaw's pool service over Cap'n Proto RPC. A client bootstraps a `Pool`
# from thawd's socket, acquires a `Vm` capability, invokes functions in it and
# releases it; dropping the capability (or disconnecting) releases it too.
# Structs mirror pool/pool_types.h field for field. Cap'n Proto attaches a
# comment to the declaration it follows: every doc comment below comes after
# what it documents. The error contract is on each interface.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("thaw::rpc::schema");

struct PoolPolicy {
  # How many clones a template keeps, and the memory they may hold.
  minWarm @0 :UInt32;          # never fewer warm clones than this (budget permitting)
  maxWarm @1 :UInt32;          # never more; >= minWarm, >= 1
  memoryBudgetMib @2 :UInt64;  # private memory of warm + leased clones together; 1 .. 2^30
}

struct TemplateSpec {
  # What a template boots. With `program` it is a program template: the
  # mini guest (kernel) runs that static x86-64 Linux executable, the
  # snapshot is taken at its first read of stdin, and invoke("run", payload)
  # feeds payload as stdin to a pristine clone of that moment (initrd must
  # then be empty). Without it, a kernel template whose clones serve the
  # built-in agent. Paths are on the daemon's host, inside its
  # allowed_image_dirs.
  name @0 :Text;      # [a-z0-9][a-z0-9_-]{0,62}
  kernel @1 :Text;    # absolute path on the daemon's host
  initrd @2 :Text;    # optional; absolute path
  cmdline @3 :Text;   # guest command line
  memMib @4 :UInt64;  # 2 .. 65536
  vcpus @5 :UInt32;   # 1 .. 64
  program @6 :Text;         # absolute path on the daemon's host
  args @7 :List(Text);      # argv[1..]; at most 256, each at most 4096 bytes
  env @8 :List(Text);       # "K=V"; at most 256, each at most 4096 bytes
  filesDir @9 :Text;        # optional; absolute; seen read-only at / in the guest
  guest @10 :Guest;
  # mini (the default, and what older clients get): thaw's own guest.
  # linux: `kernel` is a Linux bzImage and `program` (required) runs under
  # thaw's init agent with the same contract; `filesDir` is its root file
  # system and `initrd` stays empty. Needs hardware KVM on the daemon's host.
}

enum Guest {
  mini @0;
  linux @1;
}

struct TemplateInfo {
  name @0 :Text;
  spec @1 :TemplateSpec;
  policy @2 :PoolPolicy;
  snapshotDir @3 :Text;
  warm @4 :UInt32;
  leased @5 :UInt32;
  targetWarm @6 :UInt32;   # what the autoscaler aims for now
  coldBootMs @7 :Float64;  # the template's cold boot to boot-complete
  workerPid @8 :UInt32;
  # The process that holds this template's clones (thawd's template worker);
  # 0 when thawd holds them itself (template_workers = false).
  directSocket @9 :Text;
  # A unix socket the template's worker serves itself: the same Pool, for
  # this template only, without thawd's hop (acquire, listTemplates, stats;
  # createTemplate, deleteTemplate and setPolicy only on thawd's socket).
  # Same mode and group as thawd's. "" when there is none.
  workers @10 :UInt32;
  # How many worker processes hold its clones: more than 1 when thawd's
  # clones_per_worker spreads it (workerPid is then the first's, and each
  # holds a share of its policy); 0 when thawd holds them itself.
  shard @11 :Text;
  # "" when this answer covers the whole template (thawd's socket merges
  # the shards). "K/N" when it covers shard K of N only: a spread
  # template's direct socket answers from the one worker that accepted the
  # connection, with that worker's share of the policy and its own clones.
  shardSockets @12 :List(Text);
  # A spread template's socket for each shard alone, in shard order (shard
  # "K/N" is element K-1; same access as directSocket): a client that leases
  # directly spreads its connections over them to reach every shard's
  # clones. Empty when the template is not spread or has no direct socket.
}

struct TemplateStats {
  name @0 :Text;
  warm @1 :UInt32;
  leased @2 :UInt32;
  targetWarm @3 :UInt32;
  acquires @4 :UInt64;
  hits @5 :UInt64;
  misses @6 :UInt64;
  overloaded @7 :UInt64;
  restores @8 :UInt64;
  resets @9 :UInt64;
  resetFailures @10 :UInt64;
  destroyed @11 :UInt64;
  expiredLeases @12 :UInt64;
  privateMemoryMib @13 :Float64;
  restoreFailures @14 :UInt64;
  scaleUps @15 :UInt64;      # autoscaler decisions that raised targetWarm
  scaleDowns @16 :UInt64;    # ... and that lowered it
  restoreMs @17 :LatencySummary;  # restoring a new clone (background refill)
  resetMs @18 :LatencySummary;    # resetting a released clone in place
  unknownSyscalls @19 :List(UnknownSyscall);
  # A program template's system calls that the function runtime does not
  # implement (the program got -ENOSYS), with how many requests made each.
  restoreSeconds @20 :LatencyHistogram;  # every restore since the worker started
  resetSeconds @21 :LatencyHistogram;    # every reset in place since then
  shard @22 :Text;
  # As in TemplateInfo: "" for the whole template, "K/N" for one shard's
  # counters only (a spread template's direct socket).
}

struct LatencyHistogram {
  # Cumulative buckets (pool/pool_types.h's bounds, 50 us .. 10 s), for metrics.
  atMost @0 :List(UInt64);  # samples <= each bound
  count @1 :UInt64;
  sumSeconds @2 :Float64;
}

struct UnknownSyscall {
  number @0 :UInt16;    # x86-64 Linux system call number
  name @1 :Text;        # the kernel's name for it ("clone3"), or "syscall N"
  requests @2 :UInt64;  # requests that made it at least once
}

struct LatencySummary {
  # Recent durations of one kind of background work, in milliseconds.
  count @0 :UInt64;  # samples ever taken; the figures cover the most recent ones
  minMs @1 :Float64;
  medianMs @2 :Float64;
  p99Ms @3 :Float64;
}

struct PoolStats {
  templates @0 :List(TemplateStats);
}

interface Pool {
  # The pool service: templates and their warm clones. Errors arrive as
  # exceptions, of these types (the message says more):
  #   FAILED        a bad argument (the message names it and its limit), or
  #                 no such template
  #   OVERLOADED    acquire: no warm clone within the caller's timeoutMs
  #   DISCONNECTED  the daemon went away

  createTemplate @0 (spec :TemplateSpec, policy :PoolPolicy) -> (info :TemplateInfo);
  # Cold-boots spec.kernel, snapshots it and starts filling its pool
  # (milliseconds to seconds). FAILED for a bad or existing name, or a path
  # outside the daemon's allowed_image_dirs.

  listTemplates @1 () -> (templates :List(TemplateInfo));
  # Every template with its spec, policy and current counts.

  deleteTemplate @2 (name :Text) -> ();
  # Destroys the template's clones and deletes its snapshot.

  acquire @3 (template :Text, leaseMs :UInt64, timeoutMs :UInt64) -> (vm :Vm);
  # Hands out a running clone. leaseMs: 0 .. the daemon's max_lease_ms (0:
  # its default_lease_ms). timeoutMs: how long to wait for a refill when no
  # clone is warm, 0 .. 60000 (0: do not wait); then OVERLOADED.

  stats @4 () -> (stats :PoolStats);
  # Counters and recent latencies of every template.

  setPolicy @5 (name :Text, policy :PoolPolicy) -> ();
  # Changes a template's policy; stored with the template.
}

interface Vm {
  # One leased clone. Errors, as exceptions:
  #   FAILED        a bad argument, or the lease is over (released, expired)
  #   OVERLOADED    invoke: another invoke is still running in this clone
  #   DISCONNECTED  the guest crashed, stopped answering or outlived the
  #                 invoke's timeoutMs: the clone is destroyed

  invoke @0 (function :Text, payload :Data, timeoutMs :UInt64)
         -> (status :UInt32, payload :Data, totalMs :Float64, guestMs :Float64, stderr :Data);
  # Runs `function` in the guest agent (pool/invoke_protocol.h). function:
  # 1..64 printable ASCII bytes; payload: at most 1 MiB with the name;
  # timeoutMs: 1 .. 60000, 0 for the default (10000). status 0 is ok.
  # On a program template the one function is "run": payload is the
  # program's stdin, the result's payload its stdout (at most 1 MiB),
  # stderr its stderr (at most 64 KiB), status its exit status, or 128 +
  # the signal number when it faulted. A second invoke on the same lease
  # starts from the snapshot again (the clone is reset in between).

  renew @1 (leaseMs :UInt64) -> (expiresInMs :UInt64);
  # Extends the lease to leaseMs (1 .. max_lease_ms) from now.

  release @2 () -> ();
  # Resets the clone and returns it to the pool; the capability is then dead.

  info @3 () -> (leaseId :UInt64, templateName :Text, cloneId :UInt64, seed :UInt64,
                 vsockPath :Text, acquireMs :Float64, poolHit :Bool, expiresInMs :UInt64,
                 generation :UInt64);
  # The lease and the identity the clone was given at acquire.
}
