/* thaw-mini: the invoke agent (thaw.after=agent): serves pool/invoke_protocol.h
 * on vsock port 5000 through virtio_vsock.c. See README.md, "The invoke agent". */
#ifndef THAW_MINI_AGENT_H
#define THAW_MINI_AGENT_H

#include "boot_info.h"
#include "options.h"

#define AGENT_PORT 5000
#define AGENT_MAX_INVOKE_BYTES (1u << 20) /* kMaxInvokeBytes: request and response bodies */

#define INVOKE_OK 0
#define INVOKE_UNKNOWN_FUNCTION 1
#define INVOKE_BAD_REQUEST 2
#define INVOKE_FAILED 3

/* Starts the TSC calibration interval (kmain calls it first thing, so the
 * whole boot is the interval and costs no extra waiting). */
void agent_calibration_start(const struct options *options);

/* Before the boot-complete write: finds and initialises the vsock device,
 * routes its interrupt, finishes the TSC calibration and prints one line.
 * Without a usable device (or RAM for the buffers) it prints why and exits
 * with EXIT_CODE_NO_DEVICE. */
void agent_prepare(const struct options *options, const struct boot_info *boot);

/* After the write: serves connections forever. */
__attribute__((noreturn)) void agent_run(void);

#endif
