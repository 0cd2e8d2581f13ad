/* Starting the user's program, and telling how it ended.
 *
 * The program runs as PID 2 of its own PID namespace, under a small reaper
 * (PID 1 there) forked from thaw-init. Why: a machine without ACPI has no
 * power-off path, so Linux answers reboot(RB_POWER_OFF) by halting every CPU
 * with interrupts off, and the clone would sit halted until the host's
 * deadline. In a child namespace the kernel instead kills the namespace's
 * PID 1 with a status that says what was asked (SIGINT: power off or halt,
 * SIGHUP: restart), and thaw-init ends the VM cleanly on the power-off code.
 * The reaper passes the program's own wait status up a pipe, so a program
 * killed by a signal is never mistaken for a reboot. The program is not the
 * namespace's PID 1 itself: that PID ignores its own default-action signals,
 * and abort() or `kill -SEGV $$` would then do nothing.
 *
 * A kernel built without PID namespaces (a user's own) gets a plain fork;
 * thaw-init says so, and a reboot(2) there halts the guest as before. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest/mini/layout.h"
#include "guest/mini/program_abi.h"
#include "thaw_init.h"

/* NUL-separated strings -> a NULL-terminated vector (the file's bytes are
 * kept: the vector points into them). */
static char **split_nul(char *bytes, size_t len) {
  size_t n = 0;
  for (size_t i = 0; i < len; i++) n += bytes[i] == '\0';
  char **v = calloc(n + 1, sizeof *v);
  if (!v) fail(EXIT_CODE_GUEST_FAILURE, "out of memory");
  size_t k = 0;
  for (size_t i = 0; i < len && k < n; i += strlen(bytes + i) + 1) v[k++] = bytes + i;
  return v;
}

static void make_pipe(int fds[2]) {
  if (pipe2(fds, O_CLOEXEC) != 0) fail(EXIT_CODE_GUEST_FAILURE, "pipe2: %s", strerror(errno));
}

static __attribute__((noreturn)) void exec_program(char **argv, char **envp, const int in[2], const int out[2],
                                                   const int err[2]) {
  setsid();
  if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0) _exit(127);
  if (chdir("/") != 0) _exit(127);
  execve(argv[0], argv, envp);
  dprintf(2, "thaw-init: execve %s: %s\n", argv[0], strerror(errno));
  _exit(127);
}

/* PID 1 of the program's namespace: its own /proc (so that the program's
 * pids and /proc agree), the program as its one child, every orphan reaped,
 * and the program's wait status written to `status_fd` when it ends. Its
 * exit then takes the rest of the namespace with it. */
static __attribute__((noreturn)) void run_reaper(char **argv, char **envp, int in[2], int out[2], int err[2],
                                                 int status_fd) {
  if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
      mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0) {
    dprintf(2, "thaw-init: the program's /proc: %s (it sees the guest's)\n", strerror(errno));
  }
  pid_t program = fork();
  if (program < 0) _exit(126);
  if (program == 0) exec_program(argv, envp, in, out, err);
  for (int i = 0; i < 2; i++) {
    close(in[i]);
    close(out[i]);
    close(err[i]);
  }
  for (;;) {
    int status;
    pid_t done = waitpid(-1, &status, 0);
    if (done == program) {
      ssize_t unused = write(status_fd, &status, sizeof status);
      (void)unused;
      _exit(0);
    }
    if (done < 0 && errno != EINTR) _exit(126);
  }
}

/* The program's pid in thaw-init's namespace: the reaper's one child. */
static pid_t find_child_of(pid_t parent) {
  const struct timespec tick = {0, 1000000};
  for (int tries = 0; tries < 5000; tries++) {
    DIR *proc = opendir("/proc");
    struct dirent *e;
    pid_t found = 0;
    while (proc && !found && (e = readdir(proc)) != NULL) {
      if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
      char path[300], line[512];
      snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
      int fd = open(path, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      ssize_t n = read(fd, line, sizeof line - 1);
      close(fd);
      if (n <= 0) continue;
      line[n] = '\0';
      /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
      char *close_paren = strrchr(line, ')');
      int ppid = 0;
      if (close_paren && sscanf(close_paren + 1, " %*c %d", &ppid) == 1 && ppid == parent) found = atoi(e->d_name);
    }
    if (proc) closedir(proc);
    if (found) return found;
    if (waitpid(parent, NULL, WNOHANG) == parent) return 0;
    nanosleep(&tick, NULL);
  }
  return 0;
}

void program_start(struct program *p) {
  size_t argv_len = 0, env_len = 0;
  char *argv_bytes = read_file(ARGV_PATH, &argv_len);
  if (!argv_bytes || argv_len == 0) fail(EXIT_CODE_GUEST_FAILURE, "%s: %s", ARGV_PATH, argv_bytes ? "empty" : strerror(errno));
  char *env_bytes = read_file(ENV_PATH, &env_len);
  char **argv = split_nul(argv_bytes, argv_len);
  char **envp = env_bytes ? split_nul(env_bytes, env_len) : split_nul("", 0);
  if (access(argv[0], X_OK) != 0) fail(EXIT_CODE_GUEST_FAILURE, "the program %s: %s", argv[0], strerror(errno));

  int in[2], out[2], err[2], status[2];
  make_pipe(in);
  make_pipe(out);
  make_pipe(err);
  make_pipe(status);
  /* clone() without a new stack returns twice, as fork() does. */
  pid_t reaper = (pid_t)syscall(SYS_clone, CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, NULL, NULL, 0);
  int own_namespace = reaper >= 0;
  if (reaper < 0) {
    say("no PID namespace for the program (%s): its reboot(2) would halt the guest", strerror(errno));
    reaper = fork();
  }
  if (reaper < 0) fail(EXIT_CODE_GUEST_FAILURE, "fork: %s", strerror(errno));
  if (reaper == 0) {
    if (own_namespace) run_reaper(argv, envp, in, out, err, status[1]);
    exec_program(argv, envp, in, out, err);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  close(status[1]);
  p->reaper = reaper;
  p->pid = own_namespace ? find_child_of(reaper) : reaper;
  if (p->pid == 0) fail(EXIT_CODE_GUEST_FAILURE, "the program's namespace ended before the program started");
  p->status_fd = own_namespace ? status[0] : -1;
  if (!own_namespace) close(status[0]);
  p->stdin_fd = in[1];
  p->stdout_fd = out[0];
  p->stderr_fd = err[0];
  p->ran = 0;
  free(argv);
  free(envp);
}

enum program_end program_ended(struct program *p, int reaper_status, int *status) {
  *status = reaper_status;
  if (p->status_fd < 0) return PROGRAM_ENDED;
  int passed;
  if (read(p->status_fd, &passed, sizeof passed) == (ssize_t)sizeof passed) {
    *status = passed;
    return PROGRAM_ENDED;
  }
  /* No status from the reaper: the kernel killed it for a reboot(2) in the
   * namespace, or thaw-init did (SIGKILL at the output limit). */
  if (WIFSIGNALED(reaper_status) && WTERMSIG(reaper_status) == SIGINT) return PROGRAM_POWERED_OFF;
  if (WIFSIGNALED(reaper_status) && WTERMSIG(reaper_status) == SIGHUP) return PROGRAM_RESTARTED;
  return PROGRAM_ENDED;
}
