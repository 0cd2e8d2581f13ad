# The snapshot state file: everything but guest RAM, which lives in the
# memory file next to it. The file on disk is a small fixed header (magic,
# format major and minor version, payload length, XXH3-64 of the payload;
# see state_codec.h) followed by one packed message with SnapshotState as
# root. A new field with a harmless default bumps the minor (state_codec.h
# says the rules); always add fields at the end, with the next ordinal.
#
# Saved state is untrusted input when read back: decode_state() checks every
# field below before any of it reaches an ioctl.
#
# KVM's own structs (kvm_regs, kvm_sregs, kvm_fpu, kvm_xcrs, kvm_debugregs,
# kvm_lapic_state, kvm_vcpu_events, kvm_irqchip, kvm_pit_state2,
# kvm_clock_data) are stored as Data holding the struct's bytes. They are
# fixed-layout x86-64 kernel ABI, so the reader checks the exact size and the
# format's major version pins the layout; spelling out hundreds of register fields
# here would add nothing a size check does not. Everything thaw itself
# defines (memory layout, devices, MSRs, CPUID) has explicit fields.
@0xff193fac84f99a8e;

$import "/capnp/c++.capnp".namespace("thaw::snapshot::schema");

# "THAWSNAP" read as a little-endian UInt64; the root repeats the file
# header's magic so a message taken out of its file is still recognisable.
const snapshotMagic :UInt64 = 0x50414e5357414854;

struct SnapshotState {
  magic @0 :UInt64;
  formatMajor @1 :UInt32;            # equals the file header's (format 1.0 called it formatVersion)
  arch @2 :Text;                     # "x86_64"
  hostFingerprint @3 :HostFingerprint;
  memory @4 :MemoryLayout;
  vcpuCount @5 :UInt32;              # must equal vcpus' length
  vcpus @6 :List(VcpuState);
  vm @7 :VmState;
  devices @8 :DeviceStates;
  bootCompleteAfterNs @9 :UInt64;    # cold boot time up to the boot-complete write
  formatMinor @10 :UInt16;           # since 1.1; equals the file header's (absent, so 0, in 1.0)
}

# Where the snapshot was taken. A mismatch is not a decode error: the
# restorer decides (check_host_compatible).
struct HostFingerprint {
  cpuModel @0 :Text;                 # /proc/cpuinfo "model name"
  kvmBackend @1 :Text;               # kvm_intel, kvm_amd, kvm_pvm
  thawVersion @2 :Text;
}

struct MemoryLayout {
  sizeBytes @0 :UInt64;
  chunkBytes @1 :UInt64;             # power of two, at least 4096
  regions @2 :List(MemoryRegion);
  chunkHashes @3 :List(UInt64);      # XXH3-64 of every chunk, zero chunks too
}

struct MemoryRegion {
  guestStart @0 :UInt64;
  size @1 :UInt64;
  fileOffset @2 :UInt64;
}

struct VcpuState {
  vcpuId @0 :UInt32;
  cpuid @1 :List(CpuidEntry);
  mpState @2 :UInt32;                # KVM_MP_STATE_*
  regs @3 :Data;                     # struct kvm_regs
  sregs @4 :Data;                    # struct kvm_sregs
  xsave @5 :Data;                    # KVM_GET_XSAVE2 bytes, or empty
  fpu @6 :Data;                      # struct kvm_fpu
  xcrs @7 :Data;                     # struct kvm_xcrs
  debugregs @8 :Data;                # struct kvm_debugregs
  lapic @9 :Data;                    # struct kvm_lapic_state
  msrs @10 :List(MsrEntry);
  events @11 :Data;                  # struct kvm_vcpu_events
  tscKhz @12 :UInt32;
}

struct CpuidEntry {
  function @0 :UInt32;
  index @1 :UInt32;
  flags @2 :UInt32;
  eax @3 :UInt32;
  ebx @4 :UInt32;
  ecx @5 :UInt32;
  edx @6 :UInt32;
}

struct MsrEntry {
  index @0 :UInt32;
  data @1 :UInt64;
}

struct VmState {
  picMaster @0 :Data;                # struct kvm_irqchip, chip_id 0
  picSlave @1 :Data;                 # struct kvm_irqchip, chip_id 1
  ioapic @2 :Data;                   # struct kvm_irqchip, chip_id 2
  pit @3 :Data;                      # struct kvm_pit_state2; absent with noPit
  clock @4 :Data;                    # struct kvm_clock_data
  noPit @5 :Bool;                    # since 1.2: the VM had no in-kernel PIT
}

struct DeviceStates {
  serial @0 :Serial8250State;
  i8042 @1 :I8042State;
  bootComplete @2 :BootCompleteState;
  debugExit @3 :DebugExitState;
  vsock @4 :VirtioVsockState;        # absent: the VM has no vsock device
}

struct Serial8250State {
  dll @0 :UInt8;
  dlm @1 :UInt8;
  ier @2 :UInt8;
  lcr @3 :UInt8;
  mcr @4 :UInt8;
  scr @5 :UInt8;
  fcr @6 :UInt8;
  msrDeltas @7 :UInt8;
  overrun @8 :Bool;
  thrInterruptPending @9 :Bool;
  rxFifo @10 :Data;                  # oldest first, at most 64 bytes
}

struct I8042State {
  control @0 :UInt8;
  output @1 :UInt8;
  outputFull @2 :Bool;
  lastWriteCommand @3 :Bool;
  pendingCommand @4 :UInt8;
}

struct BootCompleteState {
  completions @0 :UInt64;
  ignoredWrites @1 :UInt64;
  lastSinceRequestNs @2 :Int64;      # -1 until the first completion
}

struct DebugExitState {
  exited @0 :Bool;
  code @1 :UInt8;
}

# virtio-vsock: the virtio-mmio transport's registers and the device's CID.
# Open connections are not saved (a restore resets them), nor is the host's
# unix socket path (each clone gets its own).
struct VirtioVsockState {
  transport @0 :VirtioMmioState;
  guestCid @1 :UInt64;               # 3 .. 2^32 - 2
  nextHostPort @2 :UInt32;           # 2^30 .. 2^32 - 2; 0 (older files): 2^30
}

struct VirtioMmioState {
  status @0 :UInt32;                 # device status bits (virtio 1.x, 2.1)
  deviceFeaturesSel @1 :UInt32;
  driverFeaturesSel @2 :UInt32;
  driverFeatures @3 :UInt64;         # a subset of what the device offers
  queueSel @4 :UInt32;
  interruptStatus @5 :UInt32;        # bit 0 used buffer, bit 1 config change
  configGeneration @6 :UInt32;
  queues @7 :List(VirtqueueState);   # one per device queue
}

struct VirtqueueState {
  size @0 :UInt16;                   # 0, or a power of two up to 256
  ready @1 :Bool;
  descAddr @2 :UInt64;               # ready queues: every ring inside guest RAM
  availAddr @3 :UInt64;
  usedAddr @4 :UInt64;
  nextAvail @5 :UInt16;
  nextUsed @6 :UInt16;
}
