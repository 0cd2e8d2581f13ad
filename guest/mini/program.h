/* thaw-mini function runtime, guest side: boots the user's program
 * (thaw.after=program) and connects the CPU's entries to the pure-C runtime
 * (program_runtime.h). */
#ifndef THAW_MINI_PROGRAM_H
#define THAW_MINI_PROGRAM_H

#include <stdint.h>

#include "boot_info.h"
#include "options.h"

/* Set once the program runs: ring-3 #UD/int $0x80/exceptions are its. */
extern volatile uint8_t program_running;

/* Checks the info page, isolates the kernel's pages, sets up SYSCALL and
 * enters the program in ring 3. Never returns. */
__attribute__((noreturn)) void program_run(const struct options *options, const struct boot_info *boot);

struct program_runtime;
/* Aliases above 4 GiB through which ring-3 copies reach the files, the
 * mailbox's input and its output buffers; records them as the runtime's
 * user windows (program_user_alias.c). Takes effect at the next CR3 load. */
void program_map_user_windows(struct program_runtime *rt);

/* A CPU exception from ring 3 while the program runs: mailbox, one line, exit. */
__attribute__((noreturn)) void program_report_fault(uint64_t vector, uint64_t rip);

#endif
