# thaw's pool service over Cap'n Proto RPC. A client bootstraps a `Pool`
# from thawd's socket, acquires a `Vm` capability, invokes functions in it and
# releases it; dropping the capability (or disconnecting) releases it too.
#
# Errors arrive as exceptions:
#   FAILED        a bad argument, or no such template / lease (the message
#                 names the argument and the limit)
#   OVERLOADED    no warm clone within the caller's timeoutMs
#   DISCONNECTED  the guest crashed or stopped answering (the clone is gone)
#
# Structs mirror pool/pool_types.h field for field.
@0xa124797dc70e36e8;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("thaw::rpc::schema");

struct PoolPolicy {
  minWarm @0 :UInt32;          # never fewer warm clones than this (budget permitting)
  maxWarm @1 :UInt32;          # never more; >= minWarm, >= 1
  memoryBudgetMib @2 :UInt64;  # private memory of warm + leased clones together; > 0
}

struct TemplateSpec {
  name @0 :Text;      # [a-z0-9][a-z0-9_-]{0,62}
  kernel @1 :Text;    # absolute path on the daemon's host
  initrd @2 :Text;    # optional; absolute path
  cmdline @3 :Text;   # guest command line
  memMib @4 :UInt64;  # > 0
  vcpus @5 :UInt32;   # > 0
  # A program template (additive; empty program = a kernel template whose
  # clones serve the built-in agent). The mini guest (kernel) runs this
  # static x86-64 Linux executable; the snapshot is taken at its first read
  # of stdin, and invoke("run", payload) feeds payload as stdin to a
  # pristine clone of that moment. initrd must be empty.
  program @6 :Text;         # absolute path on the daemon's host
  args @7 :List(Text);      # argv[1..]; at most 256, each at most 4096 bytes
  env @8 :List(Text);       # "K=V"; at most 256, each at most 4096 bytes
  filesDir @9 :Text;        # optional; absolute; seen read-only at / in the guest
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
  # A program template's system calls that the function runtime does not
  # implement (the program got -ENOSYS), with how many requests made each.
  unknownSyscalls @19 :List(UnknownSyscall);
}

struct UnknownSyscall {
  number @0 :UInt16;    # x86-64 Linux system call number
  name @1 :Text;        # the kernel's name for it ("clone3"), or "syscall N"
  requests @2 :UInt64;  # requests that made it at least once
}

# Recent durations of one kind of background work, in milliseconds.
struct LatencySummary {
  count @0 :UInt64;  # samples ever taken; the figures cover the most recent ones
  minMs @1 :Float64;
  medianMs @2 :Float64;
  p99Ms @3 :Float64;
}

struct PoolStats {
  templates @0 :List(TemplateStats);
}

interface Pool {
  # Cold-boots spec.kernel, snapshots it and starts filling its pool
  # (milliseconds to seconds). FAILED for a bad or existing name.
  createTemplate @0 (spec :TemplateSpec, policy :PoolPolicy) -> (info :TemplateInfo);
  listTemplates @1 () -> (templates :List(TemplateInfo));
  # Destroys the template's clones and deletes its snapshot.
  deleteTemplate @2 (name :Text) -> ();
  # Hands out a running clone. leaseMs: 1 .. the daemon's max_lease_ms.
  # timeoutMs: how long to wait for a refill when no clone is warm, 0 .. 60000
  # (0: do not wait); then OVERLOADED.
  acquire @3 (template :Text, leaseMs :UInt64, timeoutMs :UInt64) -> (vm :Vm);
  stats @4 () -> (stats :PoolStats);
  setPolicy @5 (name :Text, policy :PoolPolicy) -> ();
}

interface Vm {
  # Runs `function` in the guest agent (pool/invoke_protocol.h). function:
  # 1..64 printable ASCII bytes; payload: at most 1 MiB with the name;
  # timeoutMs: 1 .. 60000, 0 for the default (10000). status 0 is ok.
  # On a program template the one function is "run": payload is the
  # program's stdin, the result's payload its stdout (at most 1 MiB),
  # stderr its stderr (at most 64 KiB), status its exit status, or 128 +
  # the signal number when it faulted. A request that outlives timeoutMs, or
  # a guest that stops, is DISCONNECTED and the clone is destroyed. A second
  # invoke on the same lease starts from the snapshot again (the clone is
  # reset in between).
  invoke @0 (function :Text, payload :Data, timeoutMs :UInt64)
         -> (status :UInt32, payload :Data, totalMs :Float64, guestMs :Float64, stderr :Data);
  # Extends the lease to leaseMs from now.
  renew @1 (leaseMs :UInt64) -> (expiresInMs :UInt64);
  # Resets the clone and returns it to the pool; the capability is then dead.
  release @2 () -> ();
  info @3 () -> (leaseId :UInt64, templateName :Text, cloneId :UInt64, seed :UInt64,
                 vsockPath :Text, acquireMs :Float64, poolHit :Bool, expiresInMs :UInt64,
                 generation :UInt64);
}
