/* thaw-init's main: PID 1 of a Linux template's guest. See thaw_init.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest/mini/layout.h"
#include "thaw_init.h"

void say(const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  dprintf(2, "thaw-init: %.*s%s", n, line, n > 0 && line[n - 1] == '\n' ? "" : "\n");
}

void fail(uint8_t code, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  say("%s", line);
  debug_exit(code);
}

uint64_t monotonic_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

char *read_file(const char *path, size_t *len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return NULL;
  struct stat st;
  if (fstat(fd, &st) != 0 || st.st_size > (1 << 20)) {
    close(fd);
    errno = EFBIG;
    return NULL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t got = 0;
  while (buf && got < (size_t)st.st_size) {
    ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  close(fd);
  if (!buf) return NULL;
  buf[got] = '\0';
  *len = got;
  return buf;
}

/* An already mounted target (EBUSY: the kernel mounted devtmpfs) is fine. */
static void mount_fs(const char *type, const char *target, unsigned long flags, const char *data) {
  mkdir(target, 0755);
  if (mount(type, target, type, flags, data) != 0 && errno != EBUSY) say("mount %s on %s: %s", type, target, strerror(errno));
}

/* The kernel opened /dev/console as fds 0-2 when the initramfs has it;
 * make sure they exist either way, so that say() has somewhere to go. */
static void console_stdio(void) {
  if (fcntl(2, F_GETFD) == 0) return;
  int fd = open("/dev/console", O_RDWR | O_CLOEXEC);
  if (fd < 0) return;
  for (int i = 0; i < 3; i++) dup2(fd, i);
  if (fd > 2) close(fd);
}

int main(void) {
  if (getpid() != 1) {
    fprintf(stderr, "thaw-init: runs as PID 1 of a thaw Linux guest, not by hand\n");
    return 2;
  }
  mount_fs("devtmpfs", "/dev", MS_NOSUID, "mode=0755");
  console_stdio();
  mount_fs("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_fs("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  mount_fs("tmpfs", "/tmp", MS_NOSUID | MS_NODEV, "mode=1777");
  mount_fs("tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=0755");

  machine_open();
  int listen_fd = agent_listen();
  struct program program;
  program_start(&program);
  program_wait_ready(&program);
  uint64_t boot_us = monotonic_us();
  say("the program is at its ready point after %llu ms of guest time", (unsigned long long)(boot_us / 1000));

  signal_boot_complete();
  /* From here on this is a clone (or the cold boot, which the VMM ends at
   * the store above). */
  apply_clone_identity();
  agent_serve(listen_fd, &program);
}
