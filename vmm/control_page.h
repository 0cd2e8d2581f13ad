// The guest's control page (guest/mini/README.md, "The control page"): one
// 4 KiB page of guest RAM where the VMM hands a paused clone its identity
// (generation, clone id, random seed, wall clock) without a guest round
// trip. The mini guest's agent, its thaw.after=clone mode and the function
// runtime (getrandom seed, wall clock) read it when they resume.
#pragma once

#include <cstddef>
#include <cstdint>

#include "guest/mini/control_page_abi.h"
#include "vmm/memory/guest_memory.h"

namespace thaw::vmm {

// Guest-physical address and layout: guest/mini/control_page_abi.h.
inline constexpr uint64_t kControlPageAddress = CONTROL_PAGE_ADDR;
inline constexpr uint64_t kControlPageMagic = CONTROL_MAGIC;  // the bytes "THAWLOCK"

struct ControlPage {
  uint64_t magic = kControlPageMagic;
  uint64_t generation = 0;
  uint64_t clone_id = 0;
  uint64_t seed = 0;
  uint64_t wall_ns = 0;
  uint64_t clone_input = 0;
};
static_assert(sizeof(ControlPage) == CONTROL_FIELDS_BYTES);
static_assert(offsetof(ControlPage, magic) == CONTROL_OFF_MAGIC);
static_assert(offsetof(ControlPage, generation) == CONTROL_OFF_GENERATION);
static_assert(offsetof(ControlPage, clone_id) == CONTROL_OFF_CLONE_ID);
static_assert(offsetof(ControlPage, seed) == CONTROL_OFF_SEED);
static_assert(offsetof(ControlPage, wall_ns) == CONTROL_OFF_WALL_CLOCK_NS);
static_assert(offsetof(ControlPage, clone_input) == CONTROL_OFF_CLONE_INPUT);

// A page for `generation` / `clone_id` with a getrandom seed (also the
// clone_input) and CLOCK_REALTIME now. Throws SysError if getrandom fails.
ControlPage fresh_control_page(uint64_t generation, uint64_t clone_id);

// CLOCK_REALTIME in ns since the epoch.
uint64_t wall_clock_ns();

// Writes / reads the page in `memory` (the clone must be paused).
void write_control_page(GuestMemory& memory, const ControlPage& page);
ControlPage read_control_page(GuestMemory& memory);

}  // namespace thaw::vmm
