/* The invoke protocol (pool/invoke_protocol.h) on vsock port 5000, one
 * connection at a time, requests in order on each. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/vm_sockets.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/mini/layout.h"
#include "thaw_init.h"

/* Statuses, as the mini guest's agent answers them. */
enum { INVOKE_OK = 0, INVOKE_UNKNOWN_FUNCTION = 1, INVOKE_BAD_REQUEST = 2, INVOKE_FAILED = 3 };

int agent_listen(void) {
  int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) fail(EXIT_CODE_NO_DEVICE, "socket(AF_VSOCK): %s (no vsock device, or the kernel lacks CONFIG_VIRTIO_VSOCKETS)", strerror(errno));
  struct sockaddr_vm addr;
  memset(&addr, 0, sizeof addr);
  addr.svm_family = AF_VSOCK;
  addr.svm_port = AGENT_PORT;
  addr.svm_cid = VMADDR_CID_ANY;
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(fd, 16) != 0) {
    fail(EXIT_CODE_NO_DEVICE, "vsock port %d: %s", AGENT_PORT, strerror(errno));
  }
  return fd;
}

/* 0 at a clean end of stream before the first byte, 1 when `len` bytes
 * arrived, -1 otherwise. */
static int read_full(int fd, void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, (char *)buf + got, len - got);
    if (n == 0) return got == 0 ? 0 : -1;
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    got += (size_t)n;
  }
  return 1;
}

static int write_full(int fd, const void *buf, size_t len) {
  size_t put = 0;
  while (put < len) {
    ssize_t n = write(fd, (const char *)buf + put, len - put);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    put += (size_t)n;
  }
  return 0;
}

static int respond(int fd, uint32_t status, uint64_t started_us, const uint8_t *payload, size_t len) {
  uint32_t header[3] = {(uint32_t)(8 + len), status, (uint32_t)(monotonic_us() - started_us)};
  if (write_full(fd, header, sizeof header) != 0) return -1;
  return write_full(fd, payload, len);
}

static const char kRanAlready[] = "this clone already ran its program: the host resets it between requests";

/* Serves the requests on one connection; returns when it ends. */
static void serve_connection(int fd, struct program *p, uint8_t *request) {
  for (;;) {
    uint32_t length;
    int got = read_full(fd, &length, sizeof length);
    if (got < 0) say("reading a request: %s", strerror(errno));
    if (got <= 0) return;
    uint64_t started = monotonic_us();
    if (length < 2 || length > MAX_INVOKE_BYTES) {
      /* Cannot skip what will not be buffered: answer, then close. */
      respond(fd, INVOKE_BAD_REQUEST, started, NULL, 0);
      return;
    }
    if (read_full(fd, request, length) != 1) {
      say("the host closed the connection inside a request of %u bytes", length);
      return;
    }
    size_t name_len = (size_t)request[0] | (size_t)request[1] << 8;
    if (name_len == 0 || name_len > length - 2) {
      if (respond(fd, INVOKE_BAD_REQUEST, started, NULL, 0) != 0) return;
      continue;
    }
    const char *name = (const char *)request + 2;
    const uint8_t *payload = request + 2 + name_len;
    size_t payload_len = length - 2 - name_len;
    int sent;
    if (name_len == 3 && memcmp(name, "run", 3) == 0) {
      if (p->ran) {
        sent = respond(fd, INVOKE_FAILED, started, (const uint8_t *)kRanAlready, sizeof kRanAlready - 1);
      } else {
        struct run_result r;
        program_run(p, payload, payload_len, &r);
        sent = respond(fd, INVOKE_OK, started, r.out, r.out_len);
      }
    } else if (name_len == 4 && memcmp(name, "echo", 4) == 0) {
      sent = respond(fd, INVOKE_OK, started, payload, payload_len);
    } else {
      sent = respond(fd, INVOKE_UNKNOWN_FUNCTION, started, NULL, 0);
    }
    if (sent != 0) {
      say("answering a request: %s", strerror(errno));
      return;
    }
  }
}

void agent_serve(int listen_fd, struct program *p) {
  uint8_t *request = malloc(MAX_INVOKE_BYTES);
  if (!request) fail(EXIT_CODE_GUEST_FAILURE, "out of memory for the request buffer");
  for (;;) {
    int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EINTR) say("accept: %s", strerror(errno));
      continue;
    }
    /* A clone resumed after the snapshot, or handed out again: take its
     * identity before it serves anything. */
    apply_clone_identity();
    serve_connection(fd, p, request);
    close(fd);
    /* PID 1 reaps what the program left behind. */
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
  }
}
