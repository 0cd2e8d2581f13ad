// Internal to snapshot/: the virtio devices' state to and from its Cap'n
// Proto form, with the checks a restore needs before it trusts the guest
// addresses inside.
#pragma once

#include "snapshot/snapshot.capnp.h"
#include "snapshot/snapshot_state.h"

namespace thaw::snapshot {

void encode_vsock(const vmm::VsockDeviceStates& vsock, schema::VirtioVsockState::Builder out);

// Throws InputError naming the field: a reserved CID, unknown status or
// interrupt bits, features the device does not offer, a queue count other
// than the device's, a queue size that is not a power of two up to 256, or
// a ready queue whose rings are misaligned or not inside one RAM region of
// `memory`.
vmm::VsockDeviceStates decode_vsock(schema::VirtioVsockState::Reader in, const MemoryLayout& memory);

}  // namespace thaw::snapshot
