/* thaw-init: PID 1 of thaw's Linux guest (guest/linux/README.md). It starts
 * the template's program, writes boot-complete when the program first reads
 * stdin (the snapshot is taken there), then serves pool/invoke_protocol.h on
 * vsock port 5000: "run" feeds the payload to the program's stdin and
 * answers its exit status, stdout and stderr; "echo" answers the payload.
 * Static C against glibc, built by CMake beside the host programs. */
#ifndef THAW_LINUX_INIT_H
#define THAW_LINUX_INIT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define AGENT_PORT 5000
#define MAX_INVOKE_BYTES (1u << 20) /* pool::kMaxInvokeBytes */
#define MAX_STDERR_BYTES (64u << 10) /* pool::kMaxInvokeStderrBytes */
#define RUN_HEADER_BYTES 12          /* outcome, status, stdout length */

/* Where the packer (pool/linux_initramfs.cpp) puts the agent's inputs.
 * argv[0] is the program's path, "/" + its host basename, as in the mini
 * guest's function runtime. */
#define ARGV_PATH "/thaw/argv" /* NUL-terminated strings, argv[0] first */
#define ENV_PATH "/thaw/env"   /* NUL-terminated K=V strings */

/* ---- machine_io.c: the VMM's devices through /dev/mem and /dev/port ---- */
void machine_open(void);
void signal_boot_complete(void);
/* Ends the VM with `code`: the boot-complete page's exit byte once
 * machine_open() mapped it, else the debug-exit port. */
__attribute__((noreturn)) void debug_exit(uint8_t code);
/* Applies the clone identity in the control page when its generation
 * changed since the last call: wall clock, and the seed mixed into the
 * kernel's RNG with a forced reseed, so that no two clones draw the same
 * random bytes. */
void apply_clone_identity(void);

/* ---- program_start.c, program_run.c: the user's program ---- */
struct program {
  pid_t pid;     /* the program, for /proc/<pid> */
  pid_t reaper;  /* what thaw-init waits for: PID 1 of the program's namespace (or the program) */
  int status_fd; /* the reaper's report of the program's wait status; -1 without a namespace */
  int stdin_fd;  /* write end of the program's stdin */
  int stdout_fd; /* read ends of its stdout and stderr */
  int stderr_fd;
  int ran;       /* a request ran since the snapshot */
};
struct run_result {
  uint32_t outcome; /* OUTCOME_* (guest/mini/program_abi.h) */
  uint32_t status;  /* exit code, or the signal */
  uint8_t *out;     /* RUN_HEADER_BYTES + stdout + stderr: the response payload */
  size_t out_len;
  size_t stdout_len;
};
/* Starts the program with its stdio on pipes, in its own PID namespace
 * where the kernel has them. Exits through debug_exit when the argv file or
 * the program is missing. */
void program_start(struct program *p);
enum program_end { PROGRAM_ENDED, PROGRAM_POWERED_OFF, PROGRAM_RESTARTED };
/* After the reaper was reaped with `reaper_status`: how the program ended,
 * with its own wait status in *status for PROGRAM_ENDED. */
enum program_end program_ended(struct program *p, int reaper_status, int *status);
/* Returns once the program blocks waiting for fd 0 (its ready point). When it
 * ends first, prints why and its output and ends the VM. */
void program_wait_ready(struct program *p);
/* One request: `payload` as stdin, then collects output until it exits.
 * Kills it when stdout + stderr pass what one response carries or stderr
 * passes MAX_STDERR_BYTES (OUTCOME_OUTPUT_LIMIT). */
void program_run(struct program *p, const uint8_t *payload, size_t len, struct run_result *r);

/* ---- invoke_server.c ---- */
int agent_listen(void);
__attribute__((noreturn)) void agent_serve(int listen_fd, struct program *p);

/* ---- small helpers (init_main.c) ---- */
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
__attribute__((noreturn)) void fail(uint8_t code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t monotonic_us(void);
/* Reads a whole small file; NULL with errno on failure. */
char *read_file(const char *path, size_t *len);

#endif
