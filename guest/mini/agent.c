/* thaw-mini: the invoke agent (see agent.h and README.md).
 *
 * One vsock stream connection at a time on port 5000; several requests in
 * sequence (or pipelined) per connection. Incoming stream bytes go straight
 * into the request buffer at AGENT_REQUEST_ADDR, whose size is the buf_alloc
 * the guest advertises, so a peer that respects its credit can never
 * overflow it and every rx buffer is recycled at once. A request is served
 * when all of it is there; the response is built in the buffer at
 * AGENT_RESPONSE_ADDR and sent from there by address (no copy).
 *
 * Ring 0 costs ~0.7 us per instruction on PVM: copies longer than
 * RING0_COPY_MAX bytes, the hashing and the page touching run in ring 3. */
#include "agent.h"

#include <stddef.h>
#include <stdint.h>

#include "arch.h"
#include "console.h"
#include "exceptions.h"
#include "lapic.h"
#include "layout.h"
#include "traps.h"
#include "user_fn.h"
#include "virtio_vsock.h"

#define RESPONSE_HEAD 12 /* u32 length, u32 status, u32 guest microseconds */
#define MAX_PACKET_DATA 65536 /* bytes of payload per RW packet we send */
#define RING0_COPY_MAX 128

static uint8_t *const request_buffer = (uint8_t *)AGENT_REQUEST_ADDR;
static uint8_t *const response_buffer = (uint8_t *)AGENT_RESPONSE_ADDR;

/* The one connection. Counters are u32 and wrap, as in the vsock spec. */
static struct {
  int active;
  int peer_done_sending; /* peer sent SHUTDOWN with SEND only */
  uint32_t epoch;        /* bumped whenever a connection starts or ends */
  uint64_t peer_cid;
  uint32_t peer_port;
  uint32_t peer_buf_alloc;
  uint32_t peer_fwd_cnt;
  uint32_t tx_cnt;  /* stream bytes we sent */
  uint32_t fwd_cnt; /* stream bytes we consumed (served) */
} conn;

/* Connection requests that arrived while a connection was open (a client
 * often reconnects before the device has told us the old one closed): they
 * are accepted in order once it ends. The device resets one it has waited
 * on for 5 s. */
#define BACKLOG 4
struct pending_request {
  uint64_t peer_cid;
  uint32_t peer_port;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static struct pending_request backlog[BACKLOG];
static unsigned backlog_count;

/* Unconsumed stream bytes: request_buffer[read, write). */
static uint32_t request_read, request_write;

static uint64_t tsc_khz;
static uint64_t touch_end; /* end of the RAM "touch" may write (0: none) */

/* The control page as last read: the agent's seed and clock. */
static struct {
  int valid;
  uint64_t generation;
  uint64_t clone_id;
  uint64_t seed;
  uint64_t wall_ns;
  uint64_t tsc_at_read; /* the TSC when wall_ns was taken over */
} identity;

/* ---- little helpers ---------------------------------------------------- */

static inline uint16_t load16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t load32(const uint8_t *p) { return *(const uint32_t *)p; } /* x86: unaligned ok */
static inline uint64_t load64(const uint8_t *p) { return *(const uint64_t *)p; }
static inline void store32(uint8_t *p, uint32_t v) { *(uint32_t *)p = v; }
static inline void store64(uint8_t *p, uint64_t v) { *(uint64_t *)p = v; }

static struct user_copy copy_args;

/* Forward copy (dst <= src may overlap): short ones in ring 0, long ones in ring 3. */
static void copy_bytes(uint8_t *dst, const uint8_t *src, uint32_t count) {
  if (count > RING0_COPY_MAX) {
    copy_args = (struct user_copy){(uintptr_t)dst, (uintptr_t)src, count};
    enter_user(user_copy_entry, (uintptr_t)&copy_args, user_stack_top);
    return;
  }
  uint32_t i = 0;
  for (; i + 8 <= count; i += 8) store64(dst + i, load64(src + i));
  for (; i < count; i++) dst[i] = src[i];
}

static uint64_t control_field(unsigned offset) {
  return *(volatile const uint64_t *)(uintptr_t)(CONTROL_PAGE_ADDR + offset);
}

/* Takes over seed and wall clock when the VMM handed out a new generation. */
static void refresh_identity(void) {
  if (control_field(CONTROL_OFF_MAGIC) != CONTROL_MAGIC) return;
  uint64_t generation = control_field(CONTROL_OFF_GENERATION);
  if (identity.valid && generation == identity.generation) return;
  identity.generation = generation;
  identity.clone_id = control_field(CONTROL_OFF_CLONE_ID);
  identity.seed = control_field(CONTROL_OFF_SEED);
  identity.wall_ns = control_field(CONTROL_OFF_WALL_CLOCK_NS);
  identity.tsc_at_read = rdtsc();
  identity.valid = 1;
}

/* ---- packets ----------------------------------------------------------- */

static void connection_header(struct vsock_hdr *h, uint16_t op, uint32_t flags, uint32_t len) {
  h->src_cid = vsock_guest_cid();
  h->dst_cid = conn.peer_cid;
  h->src_port = AGENT_PORT;
  h->dst_port = conn.peer_port;
  h->len = len;
  h->type = VSOCK_TYPE_STREAM;
  h->op = op;
  h->flags = flags;
  h->buf_alloc = AGENT_REQUEST_CAPACITY;
  h->fwd_cnt = conn.fwd_cnt;
}

static void send_control(uint16_t op, uint32_t flags) {
  struct vsock_hdr h;
  connection_header(&h, op, flags, 0);
  vsock_tx_queue(&h, NULL, 0);
  vsock_tx_kick();
}

/* RST to whoever sent `in` (never in answer to an RST). */
static void reply_rst(const struct vsock_hdr *in) {
  if (in->op == VSOCK_OP_RST) return;
  struct vsock_hdr h = {vsock_guest_cid(), in->src_cid, in->dst_port, in->src_port, 0, VSOCK_TYPE_STREAM,
                        VSOCK_OP_RST, 0, 0, 0};
  vsock_tx_queue(&h, NULL, 0);
  vsock_tx_kick();
}

static void forget_connection(void) {
  conn.active = 0;
  conn.epoch++;
  request_read = request_write = 0;
}

/* Protocol error or peer gone for good: RST and forget. */
static void reset_connection(void) {
  send_control(VSOCK_OP_RST, 0);
  forget_connection();
}

/* Orderly close after our last response: SHUTDOWN (both directions) and
 * forget; the peer's RST that follows is ignored like any stray RST. */
static void close_connection(void) {
  send_control(VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV | VSOCK_SHUTDOWN_SEND);
  forget_connection();
}

static void accept_connection(const struct pending_request *r) {
  conn.active = 1;
  conn.peer_done_sending = 0;
  conn.epoch++;
  conn.peer_cid = r->peer_cid;
  conn.peer_port = r->peer_port;
  conn.peer_buf_alloc = r->buf_alloc;
  conn.peer_fwd_cnt = r->fwd_cnt;
  conn.tx_cnt = 0;
  conn.fwd_cnt = 0;
  request_read = request_write = 0;
  refresh_identity();
  send_control(VSOCK_OP_RESPONSE, 0);
}

/* Appends stream bytes; 0 if they do not fit (the peer ignored our credit). */
static int append_request_bytes(const uint8_t *data, uint32_t len) {
  if (len > AGENT_REQUEST_CAPACITY - request_write) {
    if (request_read > 0) {
      copy_bytes(request_buffer, request_buffer + request_read, request_write - request_read);
      request_write -= request_read;
      request_read = 0;
    }
    if (len > AGENT_REQUEST_CAPACITY - request_write) return 0;
  }
  copy_bytes(request_buffer + request_write, data, len);
  request_write += len;
  return 1;
}

/* The peer gave up on a connection request we have not accepted yet. */
static void drop_pending(const struct vsock_hdr *h) {
  for (unsigned i = 0; i < backlog_count; i++) {
    if (backlog[i].peer_cid != h->src_cid || backlog[i].peer_port != h->src_port) continue;
    for (unsigned j = i + 1; j < backlog_count; j++) backlog[j - 1] = backlog[j];
    backlog_count--;
    return;
  }
}

static void accept_from_backlog(void) {
  struct pending_request r = backlog[0];
  for (unsigned j = 1; j < backlog_count; j++) backlog[j - 1] = backlog[j];
  backlog_count--;
  accept_connection(&r);
}

static void on_packet(const struct vsock_hdr *h, const uint8_t *data, uint32_t len) {
  int ours = conn.active && h->src_cid == conn.peer_cid && h->src_port == conn.peer_port &&
             h->dst_port == AGENT_PORT;
  if (h->type != VSOCK_TYPE_STREAM) {
    reply_rst(h);
    return;
  }
  if (ours) {
    conn.peer_buf_alloc = h->buf_alloc;
    conn.peer_fwd_cnt = h->fwd_cnt;
  }
  switch (h->op) {
    case VSOCK_OP_REQUEST: {
      struct pending_request r = {h->src_cid, h->src_port, h->buf_alloc, h->fwd_cnt};
      if (h->dst_port != AGENT_PORT || ours) reply_rst(h);
      else if (!conn.active && backlog_count == 0) accept_connection(&r);
      else if (backlog_count < BACKLOG) backlog[backlog_count++] = r; /* one connection at a time */
      else reply_rst(h);
      return;
    }
    case VSOCK_OP_RW:
      if (!ours) reply_rst(h);
      else if (!append_request_bytes(data, len)) reset_connection();
      return;
    case VSOCK_OP_CREDIT_UPDATE:
      return;
    case VSOCK_OP_CREDIT_REQUEST:
      if (ours) send_control(VSOCK_OP_CREDIT_UPDATE, 0);
      else reply_rst(h);
      return;
    case VSOCK_OP_SHUTDOWN:
      if (!ours) return;
      /* The peer still reads: serve what is buffered, then close. */
      if (h->flags == VSOCK_SHUTDOWN_SEND) conn.peer_done_sending = 1;
      else reset_connection();
      return;
    case VSOCK_OP_RST:
      if (ours) forget_connection();
      else drop_pending(h);
      return;
    default: /* RESPONSE (we never connect out) or unknown */
      if (ours) reset_connection();
      else reply_rst(h);
      return;
  }
}

/* Handles everything the device has delivered; returns with interrupts off.
 * The rx index is read before the event queue: the device publishes a
 * transport reset before the packets of any connection made after it, so
 * a reset is always handled before a request that follows it. (Reading the
 * events first let a request that arrived just after a reset be accepted,
 * then dropped by the reset seen on the next round: the host saw its "OK"
 * and then the stream close.) */
static void poll_device(void) {
  for (;;) {
    uint16_t rx_until = vsock_rx_used_now();
    if (vsock_event_poll()) {
      /* TRANSPORT_RESET: every connection is gone. The backlog stays: a
       * request read before this event (we may have been in the middle of
       * vsock_rx_poll_until when the VM was snapshotted) can be newer than the
       * reset, and a stale one is refused with RST when we accept it. */
      forget_connection();
      refresh_identity();
    }
    vsock_rx_poll_until(on_packet, rx_until);
    if (!vsock_rx_pending()) break; /* nothing arrived meanwhile */
  }
  vsock_tx_reclaim();
}

/* Sends `count` stream bytes from `bytes` as RW packets within the peer's
 * credit. The bytes must stay put until vsock_tx_idle(). Gives up if the
 * connection ends meanwhile. */
static void send_stream(const uint8_t *bytes, uint32_t count) {
  uint32_t epoch = conn.epoch;
  int credit_requested = 0;
  uint32_t sent = 0;
  while (sent < count) {
    if (!conn.active || conn.epoch != epoch) return;
    uint32_t in_flight = conn.tx_cnt - conn.peer_fwd_cnt;
    uint32_t credit = in_flight < conn.peer_buf_alloc ? conn.peer_buf_alloc - in_flight : 0;
    if (credit == 0) {
      if (!credit_requested) send_control(VSOCK_OP_CREDIT_REQUEST, 0);
      credit_requested = 1;
      vsock_tx_kick();
      vsock_wait();
      poll_device();
      continue;
    }
    uint32_t chunk = count - sent;
    if (chunk > credit) chunk = credit;
    if (chunk > MAX_PACKET_DATA) chunk = MAX_PACKET_DATA;
    struct vsock_hdr h;
    connection_header(&h, VSOCK_OP_RW, 0, chunk);
    vsock_tx_queue(&h, bytes + sent, chunk);
    conn.tx_cnt += chunk;
    sent += chunk;
    credit_requested = 0;
  }
  vsock_tx_kick();
}

/* ---- the functions ------------------------------------------------------ */

static int name_is(const uint8_t *name, uint32_t len, const char *text) {
  uint32_t i = 0;
  for (; text[i]; i++) {
    if (i == len || name[i] != (uint8_t)text[i]) return 0;
  }
  return i == len;
}

static struct user_touch touch_args;

/* Runs one function; writes its result at `out` and returns the status. */
static uint32_t run_function(const uint8_t *name, uint32_t name_len, const uint8_t *payload, uint32_t payload_len,
                             uint8_t *out, uint32_t *out_len) {
  *out_len = 0;
  if (name_is(name, name_len, "echo")) {
    /* payload_len < AGENT_MAX_INVOKE_BYTES: the response fits its buffer. */
    copy_bytes(out, payload, payload_len);
    *out_len = payload_len;
    return INVOKE_OK;
  }
  if (name_is(name, name_len, "hash")) {
    if (payload_len != 8) return INVOKE_BAD_REQUEST;
    store64(out, enter_user(user_fnv1a_entry, load64(payload), user_stack_top));
    *out_len = 8;
    return INVOKE_OK;
  }
  if (name_is(name, name_len, "touch")) {
    if (payload_len != 8) return INVOKE_BAD_REQUEST;
    uint64_t mib = load64(payload);
    uint64_t available = touch_end > AGENT_TOUCH_ADDR ? (touch_end - AGENT_TOUCH_ADDR) >> 12 : 0;
    uint64_t pages = mib > (available >> 8) ? available : mib << 8;
    if (pages > 0) {
      touch_args = (struct user_touch){AGENT_TOUCH_ADDR, pages};
      pages = enter_user(user_touch_entry, (uintptr_t)&touch_args, user_stack_top);
    }
    store64(out, pages);
    *out_len = 8;
    return INVOKE_OK;
  }
  if (name_is(name, name_len, "sleep")) {
    if (payload_len != 8) return INVOKE_BAD_REQUEST;
    lapic_sleep_ms(load64(payload));
    return INVOKE_OK;
  }
  if (name_is(name, name_len, "identity")) {
    refresh_identity();
    store64(out, identity.generation);
    store64(out + 8, identity.clone_id);
    store64(out + 16, identity.seed);
    store64(out + 24, identity.wall_ns);
    *out_len = 32;
    return INVOKE_OK;
  }
  if (name_is(name, name_len, "crash")) {
    raise_fault(FAULT_UD); /* the handler reports it and ends the VM (0x31) */
    return INVOKE_FAILED;
  }
  return INVOKE_UNKNOWN_FUNCTION;
}

static uint32_t elapsed_us(uint64_t start) {
  if (tsc_khz == 0) return 0;
  uint64_t us = (rdtsc() - start) * 1000 / tsc_khz;
  return us > 0xffffffffu ? 0xffffffffu : (uint32_t)us;
}

/* Sends a response whose payload is already at response_buffer + 12. */
static void send_response(uint32_t status, uint32_t out_len, uint64_t start) {
  store32(response_buffer, (RESPONSE_HEAD - 4) + out_len);
  store32(response_buffer + 4, status);
  store32(response_buffer + 8, elapsed_us(start));
  send_stream(response_buffer, RESPONSE_HEAD + out_len);
}

/* Serves the complete request at request_read. */
static void serve_request(uint32_t length) {
  while (!vsock_tx_idle()) vsock_wait(); /* the previous response has left the buffer */
  uint64_t start = rdtsc();
  const uint8_t *body = request_buffer + request_read + 4;
  uint32_t status = INVOKE_BAD_REQUEST;
  uint32_t out_len = 0;
  if (length >= 2) {
    uint32_t name_len = load16(body);
    if (2 + name_len <= length) {
      status = run_function(body + 2, name_len, body + 2 + name_len, length - 2 - name_len,
                            response_buffer + RESPONSE_HEAD, &out_len);
    }
  }
  request_read += 4 + length;
  conn.fwd_cnt += 4 + length;
  if (request_read == request_write) request_read = request_write = 0;
  send_response(status, out_len, start);
}

/* ---- entry points ------------------------------------------------------- */

void agent_calibration_start(const struct options *options) {
  if (options->after == AFTER_AGENT && options->tsc_khz == 0) tsc_calibration_start();
}

static __attribute__((noreturn)) void fail(const char *why) {
  console_str("thaw-mini: agent: ");
  console_str(why);
  console_end_line_always();
  debug_exit(EXIT_CODE_NO_DEVICE);
}

void agent_prepare(const struct options *options, const struct boot_info *boot) {
  if (boot->image_ram_end < AGENT_RAM_NEEDED) fail("not enough RAM for the buffers");
  const char *error = vsock_init(options);
  if (error) fail(error);
  touch_end = boot->image_ram_end;
  tsc_khz = options->tsc_khz;
  if (tsc_khz == 0) tsc_khz = tsc_calibration_finish();
  if (tsc_khz == 0) { /* the boot was too short to measure: wait 10 ms */
    uint64_t start = rdtsc();
    lapic_sleep_ms(10);
    tsc_khz = (rdtsc() - start) / 10;
  }
  console_str("thaw-mini: agent: vsock cid ");
  console_dec(vsock_guest_cid());
  console_str(" at ");
  console_hex(vsock_mmio_base());
  console_str(" irq ");
  console_dec(vsock_irq());
  console_str(" port ");
  console_dec(AGENT_PORT);
  console_str(" tsc ");
  console_dec(tsc_khz);
  console_str(" kHz");
  console_end_line();
}

void agent_run(void) {
  const char *error = vsock_resume();
  if (error) fail(error);
  forget_connection();
  backlog_count = 0;
  refresh_identity();
  for (;;) {
    poll_device();
    vsock_tx_kick();
    if (!conn.active && backlog_count > 0) accept_from_backlog();
    if (conn.active) {
      uint32_t buffered = request_write - request_read;
      if (buffered >= 4) {
        uint32_t length = load32(request_buffer + request_read);
        if (length > AGENT_MAX_INVOKE_BYTES) {
          /* Cannot skip what we will not buffer: answer, then close. */
          while (!vsock_tx_idle()) vsock_wait();
          send_response(INVOKE_BAD_REQUEST, 0, rdtsc());
          close_connection();
          continue;
        }
        if (buffered - 4 >= length) {
          serve_request(length);
          continue;
        }
      }
      if (conn.peer_done_sending) { /* nothing complete is left to serve */
        close_connection();
        continue;
      }
    }
    vsock_wait();
  }
}
