/* The user's program (started by program_start.c): found at its ready point
 * (blocked reading fd 0) without ptrace by reading
 * /proc/<pid>/task/<tid>/syscall, and run once per request. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/mini/layout.h"
#include "guest/mini/program_abi.h"
#include "thaw_init.h"

/* Reads `len` bytes at `addr` in the program's memory (PID 1 may: it is
 * root, and /proc/<pid>/mem does not stop the process as ptrace would). */
static int peek(pid_t pid, unsigned long long addr, void *buf, size_t len) {
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/mem", (int)pid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = pread(fd, buf, len, (off_t)addr);
  close(fd);
  return n == (ssize_t)len;
}

/* Whether a poll/ppoll set at `fds` (`count` entries) waits for input on fd 0. */
static int poll_set_has_stdin(pid_t pid, unsigned long long fds, unsigned long long count) {
  struct pollfd set[64];
  if (count == 0 || count > 64 || !peek(pid, fds, set, count * sizeof set[0])) return 0;
  for (unsigned long long i = 0; i < count; i++) {
    if (set[i].fd == 0 && (set[i].events & POLLIN)) return 1;
  }
  return 0;
}

/* True when thread `tid` of the program sleeps waiting for stdin: in read,
 * pread64, readv, preadv(2) on fd 0, or in poll, ppoll, select or pselect6
 * with fd 0 in its read set (busybox's shell polls before it reads). The
 * syscall file says "<nr> <arg0> ... <arg5> <sp> <pc>" while it sleeps. */
static int thread_waits_on_stdin(pid_t pid, const char *tid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/task/%s/syscall", (int)pid, tid);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, line, sizeof line - 1);
  close(fd);
  if (n <= 0) return 0;
  line[n] = '\0';
  char *end;
  long nr = strtol(line, &end, 10);
  if (end == line || *end != ' ') return 0; /* "running", or -1 (not in a call) */
  unsigned long long args[6] = {0};
  for (int i = 0; i < 6 && *end == ' '; i++) args[i] = strtoull(end + 1, &end, 16);
  switch (nr) {
    case SYS_read:
    case SYS_pread64:
    case SYS_readv:
    case SYS_preadv:
    case SYS_preadv2:
      return args[0] == 0;
    case SYS_poll:
    case SYS_ppoll:
      return poll_set_has_stdin(pid, args[0], args[1]);
    case SYS_select:
    case SYS_pselect6: {
      uint64_t readfds = 0;
      return args[0] >= 1 && args[1] != 0 && peek(pid, args[1], &readfds, sizeof readfds) && (readfds & 1);
    }
    default:
      return 0;
  }
}

static int reads_stdin(pid_t pid) {
  char path[32];
  snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
  DIR *dir = opendir(path);
  if (!dir) return 0;
  int found = 0;
  struct dirent *e;
  while (!found && (e = readdir(dir)) != NULL) {
    if (e->d_name[0] != '.') found = thread_waits_on_stdin(pid, e->d_name);
  }
  closedir(dir);
  return found;
}

/* Copies what is waiting on `fd` to the console (output before the ready
 * point belongs to no request). */
static void forward_to_console(int fd, const char *stream) {
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) say("program %s: %.*s", stream, (int)n, buf);
}

void program_wait_ready(struct program *p) {
  fcntl(p->stdout_fd, F_SETFL, O_NONBLOCK);
  fcntl(p->stderr_fd, F_SETFL, O_NONBLOCK);
  const struct timespec tick = {0, 1000000}; /* 1 ms: cheap against a boot */
  for (;;) {
    forward_to_console(p->stdout_fd, "stdout");
    forward_to_console(p->stderr_fd, "stderr");
    int status;
    pid_t done = waitpid(p->reaper, &status, WNOHANG);
    if (done == p->reaper) {
      forward_to_console(p->stdout_fd, "stdout");
      forward_to_console(p->stderr_fd, "stderr");
      enum program_end end = program_ended(p, status, &status);
      if (end != PROGRAM_ENDED) {
        say("the program %s the guest (reboot(2)) before its first read of stdin",
            end == PROGRAM_RESTARTED ? "restarted" : "powered off or halted");
      } else if (WIFEXITED(status)) {
        say("the program exited with status %d before its first read of stdin", WEXITSTATUS(status));
      } else {
        say("the program was killed by signal %d before its first read of stdin", WTERMSIG(status));
      }
      debug_exit(EXIT_CODE_PROGRAM_NOT_READY);
    }
    if (reads_stdin(p->pid)) return;
    nanosleep(&tick, NULL);
  }
}

/* Appends what `fd` has to r->out, within `room`; returns 0 at EOF, -1 when
 * over the room, 1 otherwise. */
static int collect(int fd, struct run_result *r, size_t room, size_t *taken) {
  for (;;) {
    uint8_t buf[16384];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0) return (errno == EAGAIN || errno == EINTR) ? 1 : 0;
    if (*taken + (size_t)n > room) return -1;
    memcpy(r->out + r->out_len, buf, (size_t)n);
    r->out_len += (size_t)n;
    *taken += (size_t)n;
  }
}

void program_run(struct program *p, const uint8_t *payload, size_t len, struct run_result *r) {
  memset(r, 0, sizeof *r);
  /* stdout first, stderr after it in the same buffer: stderr is gathered
   * aside and appended at the end. */
  static uint8_t out_buf[MAX_INVOKE_BYTES];
  static uint8_t err_buf[MAX_STDERR_BYTES];
  struct run_result err = {.out = err_buf};
  r->out = out_buf;
  r->out_len = RUN_HEADER_BYTES;
  size_t stdout_taken = 0, stderr_taken = 0, sent = 0;
  const size_t stdout_room = MAX_INVOKE_BYTES - RUN_HEADER_BYTES;
  int in_fd = p->stdin_fd, out_open = 1, err_open = 1, over = 0, status = 0;
  p->ran = 1;
  fcntl(in_fd, F_SETFL, O_NONBLOCK);
  if (len == 0) {
    close(in_fd);
    in_fd = -1;
  }
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    struct pollfd fds[3] = {{p->stdout_fd, out_open ? POLLIN : 0, 0},
                            {p->stderr_fd, err_open ? POLLIN : 0, 0},
                            {in_fd, POLLOUT, 0}};
    /* A 10 ms tick notices the program's exit while a grandchild holds
     * its pipes open. */
    poll(fds, in_fd >= 0 ? 3 : 2, 10);
    if (in_fd >= 0 && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = write(in_fd, payload + sent, len - sent);
      if (n > 0) sent += (size_t)n;
      if (n < 0 && errno != EAGAIN && errno != EINTR) sent = len; /* it closed stdin: done feeding */
      if (sent == len) {
        close(in_fd);
        in_fd = -1;
      }
    }
    if (out_open) {
      int c = collect(p->stdout_fd, r, stdout_room - stderr_taken, &stdout_taken);
      out_open = c > 0;
      over |= c < 0;
    }
    if (err_open) {
      size_t room = MAX_STDERR_BYTES;
      if (room > stdout_room - stdout_taken) room = stdout_room - stdout_taken;
      int c = collect(p->stderr_fd, &err, room, &stderr_taken);
      err_open = c > 0;
      over |= c < 0;
    }
    if (over) {
      kill(p->reaper, SIGKILL); /* the namespace's PID 1: everything the program started goes too */
      waitpid(p->reaper, &status, 0);
      r->outcome = OUTCOME_OUTPUT_LIMIT;
      r->status = SIGKILL;
      break;
    }
    pid_t done = waitpid(p->reaper, &status, out_open || err_open ? WNOHANG : 0);
    if (done < 0 && errno == ECHILD) { /* reaped already: it died unseen */
      r->outcome = OUTCOME_FAULT;
      r->status = SIGKILL;
      break;
    }
    if (done == p->reaper) {
      if (program_ended(p, status, &status) != PROGRAM_ENDED) {
        /* As a Linux machine that powers off or reboots ends: the clone
         * goes, the host reports the lost request as "guest powered off". */
        say("the program powered off, halted or restarted the guest (reboot(2)): the clone ends");
        debug_exit(EXIT_CODE_POWER_OFF);
      }
      /* What it wrote just before it ended, within the same limits. */
      over |= collect(p->stdout_fd, r, stdout_room - stderr_taken, &stdout_taken) < 0;
      size_t room = MAX_STDERR_BYTES;
      if (room > stdout_room - stdout_taken) room = stdout_room - stdout_taken;
      over |= collect(p->stderr_fd, &err, room, &stderr_taken) < 0;
      if (over) {
        r->outcome = OUTCOME_OUTPUT_LIMIT;
        r->status = SIGKILL;
      } else {
        r->outcome = WIFEXITED(status) ? OUTCOME_EXITED : OUTCOME_FAULT;
        r->status = WIFEXITED(status) ? (uint32_t)WEXITSTATUS(status) : (uint32_t)WTERMSIG(status);
      }
      break;
    }
  }
  if (in_fd >= 0) close(in_fd);
  r->stdout_len = stdout_taken;
  if (r->out_len + err.out_len > MAX_INVOKE_BYTES) err.out_len = MAX_INVOKE_BYTES - r->out_len;
  memcpy(r->out + r->out_len, err_buf, err.out_len);
  r->out_len += err.out_len;
  uint32_t header[3] = {r->outcome, r->status, (uint32_t)stdout_taken};
  memcpy(r->out, header, sizeof header); /* x86: little-endian already */
}
