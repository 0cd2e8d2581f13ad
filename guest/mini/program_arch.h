/* thaw-mini function runtime: what the pure C runtime needs from the machine.
 * program_arch.c implements these in the guest; the host tests fake them. */
#ifndef THAW_MINI_PROGRAM_ARCH_H
#define THAW_MINI_PROGRAM_ARCH_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint64_t program_arch_tsc(void);
void program_arch_set_fs_base(uint64_t base); /* MSR_FS_BASE */
/* Prints "thaw-mini: ready" and writes the boot-complete byte: the VMM
 * snapshots here, and every clone resumes when this returns. */
void program_arch_ready_point(void);
/* One console line "thaw-mini: program: <what> <number>". */
void program_arch_log(const char *what, uint64_t number);

#ifdef __cplusplus
}
#endif

#endif
