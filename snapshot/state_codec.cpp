#include "snapshot/state_codec.h"

#include <capnp/message.h>
#include <capnp/serialize-packed.h>
#include <kj/exception.h>
#include <kj/io.h>
#include <xxhash.h>

#include <bit>
#include <cstring>

#include "base/hex_text.h"
#include "base/printable_text.h"
#include "snapshot/machine_state_codec.h"
#include "snapshot/snapshot.capnp.h"
#include "snapshot/virtio_state_codec.h"
#include "vmm/memory/guest_memory.h"
#include "base/errors.h"

namespace thaw::snapshot {

namespace {

constexpr char kMagic[8] = {'T', 'H', 'A', 'W', 'S', 'N', 'A', 'P'};

// The fixed header in front of the payload; x86-64 only, so the in-memory
// little-endian layout is the file layout.
struct FileHeader {
  char magic[8];
  uint16_t format_major;
  uint16_t format_minor;
  uint32_t header_bytes;
  uint64_t payload_bytes;
  uint64_t payload_xxh3;
};
static_assert(sizeof(FileHeader) == kStateHeaderBytes);

[[noreturn]] void reject(const std::string& why) { throw InputError("snapshot state: " + why); }

void encode_memory(const MemoryLayout& m, schema::MemoryLayout::Builder out) {
  out.setSizeBytes(m.size_bytes);
  out.setChunkBytes(m.chunk_bytes);
  auto regions = out.initRegions(static_cast<unsigned>(m.regions.size()));
  for (unsigned i = 0; i < m.regions.size(); ++i) {
    regions[i].setGuestStart(m.regions[i].guest_start);
    regions[i].setSize(m.regions[i].size);
    regions[i].setFileOffset(m.regions[i].file_offset);
  }
  auto hashes = out.initChunkHashes(static_cast<unsigned>(m.chunk_hashes.size()));
  for (unsigned i = 0; i < m.chunk_hashes.size(); ++i) hashes.set(i, m.chunk_hashes[i]);
}

void encode_devices(const vmm::DeviceStates& d, schema::DeviceStates::Builder out) {
  auto s = out.initSerial();
  s.setDll(d.serial.dll);
  s.setDlm(d.serial.dlm);
  s.setIer(d.serial.ier);
  s.setLcr(d.serial.lcr);
  s.setMcr(d.serial.mcr);
  s.setScr(d.serial.scr);
  s.setFcr(d.serial.fcr);
  s.setMsrDeltas(d.serial.msr_deltas);
  s.setOverrun(d.serial.overrun);
  s.setThrInterruptPending(d.serial.thr_interrupt_pending);
  s.setRxFifo(kj::arrayPtr(d.serial.rx_fifo.data(), d.serial.rx_fifo.size()));

  auto k = out.initI8042();
  k.setControl(d.i8042.control);
  k.setOutput(d.i8042.output);
  k.setOutputFull(d.i8042.output_full);
  k.setLastWriteCommand(d.i8042.last_write_command);
  k.setPendingCommand(d.i8042.pending_command);

  auto b = out.initBootComplete();
  b.setCompletions(d.boot_complete.completions);
  b.setIgnoredWrites(d.boot_complete.ignored_writes);
  b.setLastSinceRequestNs(d.boot_complete.last_since_request_ns);

  auto e = out.initDebugExit();
  e.setExited(d.debug_exit.exited);
  e.setCode(d.debug_exit.code);

  if (d.vsock) encode_vsock(*d.vsock, out.initVsock());
}

MemoryLayout decode_memory(schema::MemoryLayout::Reader in, const DecodeLimits& limits) {
  MemoryLayout m;
  m.size_bytes = in.getSizeBytes();
  m.chunk_bytes = in.getChunkBytes();
  if (m.size_bytes == 0) reject("memory size is 0");
  if (m.size_bytes % 4096 != 0) reject("memory size " + std::to_string(m.size_bytes) + " is not a multiple of 4 KiB");
  if (m.size_bytes > limits.max_memory_bytes) {
    reject("memory size " + std::to_string(m.size_bytes) + " is over the limit of " +
           std::to_string(limits.max_memory_bytes));
  }
  if (!std::has_single_bit(m.chunk_bytes) || m.chunk_bytes < kMinChunkBytes || m.chunk_bytes > kMaxChunkBytes) {
    reject("memory chunk size " + std::to_string(m.chunk_bytes) + " is not a power of two from " +
           std::to_string(kMinChunkBytes) + " to " + std::to_string(kMaxChunkBytes));
  }

  // The regions must be exactly the ones thaw would plan for this size: a
  // restore registers them with KVM, so they decide what the guest can reach.
  auto regions = in.getRegions();
  uint64_t covered = 0;
  for (auto r : regions) {
    m.regions.push_back(SavedRegion{r.getGuestStart(), r.getSize(), r.getFileOffset()});
    covered += r.getSize();  // each is checked against the plan below, so no overflow survives
  }
  auto plan = vmm::plan_ram_regions(m.size_bytes);
  if (covered != m.size_bytes || m.regions.size() != plan.size()) {
    reject("memory regions (" + std::to_string(m.regions.size()) + ") cover " + std::to_string(covered) +
           " bytes, the memory size is " + std::to_string(m.size_bytes));
  }
  for (size_t i = 0; i < plan.size(); ++i) {
    const auto& r = m.regions[i];
    if (r.guest_start != plan[i].guest_start.value || r.size != plan[i].size ||
        r.file_offset != plan[i].file_offset) {
      reject("memory region " + std::to_string(i) + " is guest " + hex16(r.guest_start) + " + " +
             std::to_string(r.size) + " at file offset " + std::to_string(r.file_offset) + "; thaw places it at " +
             hex16(plan[i].guest_start.value) + " + " + std::to_string(plan[i].size) + " at file offset " +
             std::to_string(plan[i].file_offset));
    }
  }

  auto hashes = in.getChunkHashes();
  if (hashes.size() != m.chunk_count()) {
    reject("memory has " + std::to_string(hashes.size()) + " chunk hashes, " + std::to_string(m.size_bytes) +
           " bytes in " + std::to_string(m.chunk_bytes) + "-byte chunks need " + std::to_string(m.chunk_count()));
  }
  m.chunk_hashes.reserve(hashes.size());
  for (uint64_t h : hashes) m.chunk_hashes.push_back(h);
  return m;
}

// List bounds and value ranges are checked here; each device's restore()
// checks its own register semantics again before it touches the device.
vmm::DeviceStates decode_devices(schema::DeviceStates::Reader in, const MemoryLayout& memory) {
  if (!in.hasSerial() || !in.hasI8042() || !in.hasBootComplete() || !in.hasDebugExit()) {
    reject("device state is missing one of serial, i8042, bootComplete, debugExit");
  }
  vmm::DeviceStates d;
  auto s = in.getSerial();
  d.serial.dll = s.getDll();
  d.serial.dlm = s.getDlm();
  d.serial.ier = s.getIer();
  d.serial.lcr = s.getLcr();
  d.serial.mcr = s.getMcr();
  d.serial.scr = s.getScr();
  d.serial.fcr = s.getFcr();
  d.serial.msr_deltas = s.getMsrDeltas();
  d.serial.overrun = s.getOverrun();
  d.serial.thr_interrupt_pending = s.getThrInterruptPending();
  auto fifo = s.getRxFifo();
  if (fifo.size() > devices::kSerial8250RxCapacity) {
    reject("serial rx FIFO holds " + std::to_string(fifo.size()) + " bytes, the UART's FIFO holds " +
           std::to_string(devices::kSerial8250RxCapacity));
  }
  d.serial.rx_fifo.assign(fifo.begin(), fifo.end());

  auto k = in.getI8042();
  d.i8042.control = k.getControl();
  d.i8042.output = k.getOutput();
  d.i8042.output_full = k.getOutputFull();
  d.i8042.last_write_command = k.getLastWriteCommand();
  d.i8042.pending_command = k.getPendingCommand();

  auto b = in.getBootComplete();
  d.boot_complete.completions = b.getCompletions();
  d.boot_complete.ignored_writes = b.getIgnoredWrites();
  d.boot_complete.last_since_request_ns = b.getLastSinceRequestNs();
  if (d.boot_complete.last_since_request_ns < -1) {
    reject("bootComplete lastSinceRequestNs is " + std::to_string(d.boot_complete.last_since_request_ns) +
           "; expected -1 (none yet) or a duration");
  }

  auto e = in.getDebugExit();
  d.debug_exit.exited = e.getExited();
  d.debug_exit.code = e.getCode();

  // Queue addresses are checked against the memory layout decoded above.
  if (in.hasVsock()) d.vsock = decode_vsock(in.getVsock(), memory);
  return d;
}

std::string version_text(uint32_t major, uint32_t minor) {
  return std::to_string(major) + "." + std::to_string(minor);
}

SnapshotState decode_root(schema::SnapshotState::Reader root, const FileHeader& header, const DecodeLimits& limits) {
  if (root.getMagic() != schema::SNAPSHOT_MAGIC) {
    reject("message magic is " + hex16(root.getMagic()) + ", expected " + hex16(schema::SNAPSHOT_MAGIC));
  }
  if (root.getFormatMajor() != header.format_major || root.getFormatMinor() != header.format_minor) {
    reject("message says format " + version_text(root.getFormatMajor(), root.getFormatMinor()) +
           ", the file header " + version_text(header.format_major, header.format_minor));
  }
  std::string arch = root.hasArch() ? std::string(root.getArch().cStr()) : std::string();
  if (arch != kStateArch) reject("arch is \"" + printable_text(arch) + "\", this thaw restores " + kStateArch);
  if (!root.hasHostFingerprint() || !root.hasMemory() || !root.hasVm() || !root.hasDevices()) {
    reject("message is missing one of hostFingerprint, memory, vm, devices");
  }

  SnapshotState s;
  auto host = root.getHostFingerprint();
  // Shown to users (mismatch warnings, thaw restore): escaped, never raw.
  s.host.cpu_model = printable_text(host.getCpuModel().cStr());
  s.host.kvm_backend = printable_text(host.getKvmBackend().cStr());
  s.host.thaw_version = printable_text(host.getThawVersion().cStr());
  s.memory = decode_memory(root.getMemory(), limits);

  auto vcpus = root.getVcpus();
  if (vcpus.size() == 0 || vcpus.size() > limits.max_vcpus) {
    reject("has " + std::to_string(vcpus.size()) + " vCPUs; expected 1.." + std::to_string(limits.max_vcpus));
  }
  if (vcpus.size() != root.getVcpuCount()) {
    reject("lists " + std::to_string(vcpus.size()) + " vCPUs but vcpuCount says " +
           std::to_string(root.getVcpuCount()));
  }
  for (uint32_t i = 0; i < vcpus.size(); ++i) s.machine.vcpus.push_back(decode_vcpu(vcpus[i], i, limits));

  s.machine.vm = decode_vm(root.getVm());
  s.machine.devices = decode_devices(root.getDevices(), s.memory);
  s.boot_complete_after_ns = root.getBootCompleteAfterNs();
  return s;
}

}  // namespace

std::vector<uint8_t> encode_state(const SnapshotState& state) {
  capnp::MallocMessageBuilder message;
  auto root = message.initRoot<schema::SnapshotState>();
  root.setMagic(schema::SNAPSHOT_MAGIC);
  root.setFormatMajor(kFormatMajor);
  root.setFormatMinor(kFormatMinor);
  root.setArch(kStateArch);
  auto host = root.initHostFingerprint();
  host.setCpuModel(state.host.cpu_model);
  host.setKvmBackend(state.host.kvm_backend);
  host.setThawVersion(state.host.thaw_version);
  encode_memory(state.memory, root.initMemory());
  root.setVcpuCount(static_cast<uint32_t>(state.machine.vcpus.size()));
  auto vcpus = root.initVcpus(static_cast<unsigned>(state.machine.vcpus.size()));
  for (unsigned i = 0; i < state.machine.vcpus.size(); ++i) encode_vcpu(state.machine.vcpus[i], vcpus[i]);
  encode_vm(state.machine.vm, root.initVm());
  encode_devices(state.machine.devices, root.initDevices());
  root.setBootCompleteAfterNs(state.boot_complete_after_ns);

  kj::VectorOutputStream payload;
  capnp::writePackedMessage(payload, message);
  auto bytes = payload.getArray();

  FileHeader header{};
  std::memcpy(header.magic, kMagic, sizeof kMagic);
  header.format_major = kFormatMajor;
  header.format_minor = kFormatMinor;
  header.header_bytes = kStateHeaderBytes;
  header.payload_bytes = bytes.size();
  header.payload_xxh3 = XXH3_64bits(bytes.begin(), bytes.size());

  std::vector<uint8_t> file(sizeof header + bytes.size());
  std::memcpy(file.data(), &header, sizeof header);
  std::memcpy(file.data() + sizeof header, bytes.begin(), bytes.size());
  return file;
}

SnapshotState decode_state(std::span<const uint8_t> file, const DecodeLimits& limits) {
  // Everything about the header before the parser sees the payload.
  if (file.size() > limits.max_file_bytes) {
    reject("file is " + std::to_string(file.size()) + " bytes, over the limit of " +
           std::to_string(limits.max_file_bytes));
  }
  if (file.size() < sizeof(FileHeader)) {
    reject("file is " + std::to_string(file.size()) + " bytes, shorter than its " +
           std::to_string(sizeof(FileHeader)) + "-byte header (truncated?)");
  }
  FileHeader header;
  std::memcpy(&header, file.data(), sizeof header);
  if (std::memcmp(header.magic, kMagic, sizeof kMagic) != 0) {
    reject("not a thaw snapshot state file (bad magic; expected \"THAWSNAP\")");
  }
  // Another minor of this major only adds fields a reader may ignore.
  if (header.format_major != kFormatMajor) {
    reject("file has format " + version_text(header.format_major, header.format_minor) + ", this thaw reads " +
           std::to_string(kFormatMajor) + ".x");
  }
  if (header.header_bytes != sizeof(FileHeader)) {
    reject("header size is " + std::to_string(header.header_bytes) + ", format " + std::to_string(kFormatMajor) +
           ".x has " + std::to_string(sizeof(FileHeader)));
  }
  auto payload = file.subspan(sizeof header);
  if (header.payload_bytes != payload.size()) {
    reject("header says the payload is " + std::to_string(header.payload_bytes) + " bytes, the file holds " +
           std::to_string(payload.size()) + (payload.size() < header.payload_bytes ? " (truncated)" : ""));
  }
  uint64_t checksum = XXH3_64bits(payload.data(), payload.size());
  if (checksum != header.payload_xxh3) {
    reject("checksum mismatch: payload XXH3 is " + hex16(checksum) + ", the header says " + hex16(header.payload_xxh3) +
           " (the file is corrupt)");
  }

  // A checksum only proves the writer's intent; the payload is still
  // untrusted, so the parser runs with limits and every field is checked.
  capnp::ReaderOptions options;
  options.traversalLimitInWords = limits.traversal_limit_words;
  options.nestingLimit = 16;
  kj::ArrayInputStream input(kj::arrayPtr(payload.data(), payload.size()));
  SnapshotState state;
  try {
    capnp::PackedMessageReader reader(input, options);
    state = decode_root(reader.getRoot<schema::SnapshotState>(), header, limits);
  } catch (const kj::Exception& e) {
    reject(std::string("payload is not a valid message: ") + e.getDescription().cStr());
  }
  if (auto rest = input.tryGetReadBuffer(); rest.size() != 0) {
    reject(std::to_string(rest.size()) + " bytes follow the message");
  }
  return state;
}

}  // namespace thaw::snapshot
