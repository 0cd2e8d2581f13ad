/* thaw-mini: virtio-mmio vsock driver (see virtio_vsock.h).
 *
 * Ring 0 is emulated on PVM at ~0.7 us per instruction and every register
 * access is an exit, so the driver keeps to: one register write per kick, no
 * copies (rx data is handed over in place, tx data is chained by address),
 * and no per-packet register reads (the interrupt handler in traps.S does
 * the acknowledging). */
#include "virtio_vsock.h"

#include <stddef.h>
#include <stdint.h>

#include "lapic.h"
#include "layout.h"
#include "traps.h"

/* virtio-mmio registers (virtio 1.x, section 4.2.2). */
#define VIRTIO_MMIO_MAGIC 0x000
#define VIRTIO_MMIO_VERSION 0x004
#define VIRTIO_MMIO_DEVICE_ID 0x008
#define VIRTIO_MMIO_DEVICE_FEATURES 0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL 0x014
#define VIRTIO_MMIO_DRIVER_FEATURES 0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL 0x024
#define VIRTIO_MMIO_QUEUE_SEL 0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX 0x034
#define VIRTIO_MMIO_QUEUE_NUM 0x038
#define VIRTIO_MMIO_QUEUE_READY 0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x050
#define VIRTIO_MMIO_STATUS 0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW 0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH 0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW 0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH 0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW 0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH 0x0a4
#define VIRTIO_MMIO_CONFIG 0x100 /* vsock: le64 guest_cid */
#define VIRTIO_MMIO_MIN_SIZE 0x108

#define VIRTIO_MMIO_MAGIC_VALUE 0x74726976 /* "virt" */
#define VIRTIO_ID_VSOCK 19

#define STATUS_ACKNOWLEDGE 1
#define STATUS_DRIVER 2
#define STATUS_DRIVER_OK 4
#define STATUS_FEATURES_OK 8
#define STATUS_NEEDS_RESET 0x40
#define STATUS_FAILED 0x80
#define STATUS_RUNNING (STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK)

#define VIRTIO_F_VERSION_1_HIGH 1 /* feature bit 32: bit 0 of features word 1 */

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

#define QUEUE_RX 0
#define QUEUE_TX 1
#define QUEUE_EVENT 2
#define QUEUE_COUNT 3
#define QUEUE_SIZE_MAX 32
#define SLOTS_MAX (QUEUE_SIZE_MAX / 2) /* two descriptors per rx buffer / tx slot */

#define VSOCK_EVENT_TRANSPORT_RESET 0

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};

struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[QUEUE_SIZE_MAX];
  uint16_t used_event;
};

struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};

struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[QUEUE_SIZE_MAX];
  uint16_t avail_event;
};

/* One queue's rings, in .bss (zero at load; re-zeroed where it matters on a
 * re-initialisation). Alignments: descriptors 16, avail 2, used 4. */
struct virtq_rings {
  struct virtq_desc desc[QUEUE_SIZE_MAX];
  struct virtq_avail avail;
  struct virtq_used used __attribute__((aligned(64)));
};

struct queue {
  struct virtq_rings *rings;
  uint16_t size; /* a power of two, <= QUEUE_SIZE_MAX */
  uint16_t avail_idx; /* next avail->idx to publish */
  uint16_t last_used; /* used entries consumed so far */
};

static struct virtq_rings rings[QUEUE_COUNT] __attribute__((aligned(4096)));
static struct vsock_hdr rx_hdr[SLOTS_MAX] __attribute__((aligned(64)));
static struct vsock_hdr tx_hdr[SLOTS_MAX] __attribute__((aligned(64)));
static uint32_t event_buffer[2];

static inline uint64_t rx_data(unsigned buffer) { return VSOCK_RX_BUFFERS_ADDR + (uint64_t)buffer * VSOCK_RX_DATA_SIZE; }

static struct queue queues[QUEUE_COUNT];
static uint64_t mmio_base;
static unsigned device_irq;
static uint64_t guest_cid;
static uint8_t tx_free_slots[SLOTS_MAX];
static unsigned tx_free_count;
static unsigned tx_slot_count;
static int tx_pending_kick;

#define barrier() __asm__ volatile("" ::: "memory")

static inline uint32_t reg_read(uint64_t base, unsigned reg) {
  return *(volatile uint32_t *)(uintptr_t)(base + reg);
}

static inline void reg_write(unsigned reg, uint32_t value) {
  *(volatile uint32_t *)(uintptr_t)(mmio_base + reg) = value;
}

static inline uint16_t used_idx(const struct queue *q) {
  return *(volatile const uint16_t *)&q->rings->used.idx;
}

static inline void publish(struct queue *q) {
  barrier(); /* ring entries and descriptors before the index (x86: stores stay in order) */
  *(volatile uint16_t *)&q->rings->avail.idx = q->avail_idx;
}

static void notify(unsigned queue) { reg_write(VIRTIO_MMIO_QUEUE_NOTIFY, queue); }

static const char *setup_queue(unsigned index) {
  struct queue *q = &queues[index];
  reg_write(VIRTIO_MMIO_QUEUE_SEL, index);
  uint32_t max = reg_read(mmio_base, VIRTIO_MMIO_QUEUE_NUM_MAX);
  uint16_t size = QUEUE_SIZE_MAX;
  while (size > max) size >>= 1;
  if (size < 2) return "queue too small";
  q->rings = &rings[index];
  q->size = size;
  q->avail_idx = 0;
  q->last_used = 0;
  /* Stale indexes from an earlier initialisation would read as work. */
  q->rings->avail.flags = 0;
  q->rings->avail.idx = 0;
  q->rings->used.flags = 0;
  q->rings->used.idx = 0;
  uint64_t desc = (uintptr_t)q->rings->desc;
  uint64_t avail = (uintptr_t)&q->rings->avail;
  uint64_t used = (uintptr_t)&q->rings->used;
  reg_write(VIRTIO_MMIO_QUEUE_NUM, size);
  reg_write(VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
  reg_write(VIRTIO_MMIO_QUEUE_DESC_HIGH, (uint32_t)(desc >> 32));
  reg_write(VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
  reg_write(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, (uint32_t)(avail >> 32));
  reg_write(VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
  reg_write(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, (uint32_t)(used >> 32));
  reg_write(VIRTIO_MMIO_QUEUE_READY, 1);
  return NULL;
}

/* rx buffer b: descriptor 2b (header, 44 bytes) -> 2b+1 (data, 4 KiB). */
static void fill_rx(void) {
  struct queue *q = &queues[QUEUE_RX];
  struct virtq_desc *desc = q->rings->desc;
  unsigned buffers = q->size / 2;
  _Static_assert(VSOCK_RX_BUFFERS_END - VSOCK_RX_BUFFERS_ADDR >= SLOTS_MAX * VSOCK_RX_DATA_SIZE, "rx buffers");
  for (unsigned b = 0; b < buffers; b++) {
    desc[2 * b] = (struct virtq_desc){(uintptr_t)&rx_hdr[b], VSOCK_HDR_SIZE,
                                      VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, (uint16_t)(2 * b + 1)};
    desc[2 * b + 1] = (struct virtq_desc){rx_data(b), VSOCK_RX_DATA_SIZE, VIRTQ_DESC_F_WRITE, 0};
    q->rings->avail.ring[b] = (uint16_t)(2 * b);
  }
  q->avail_idx = (uint16_t)buffers;
  publish(q);
}

static void fill_event(void) {
  struct queue *q = &queues[QUEUE_EVENT];
  q->rings->desc[0] = (struct virtq_desc){(uintptr_t)event_buffer, sizeof(event_buffer), VIRTQ_DESC_F_WRITE, 0};
  q->rings->avail.ring[0] = 0;
  q->avail_idx = 1;
  publish(q);
}

/* tx slot s: descriptor 2s (header) -> 2s+1 (data), filled per packet. */
static void init_tx(void) {
  tx_slot_count = queues[QUEUE_TX].size / 2;
  for (unsigned s = 0; s < tx_slot_count; s++) tx_free_slots[s] = (uint8_t)s;
  tx_free_count = tx_slot_count;
  tx_pending_kick = 0;
}

static void read_guest_cid(void) {
  guest_cid = reg_read(mmio_base, VIRTIO_MMIO_CONFIG) |
              ((uint64_t)reg_read(mmio_base, VIRTIO_MMIO_CONFIG + 4) << 32);
}

/* virtio 1.x section 3.1.1, in order. */
static const char *device_init(void) {
  reg_write(VIRTIO_MMIO_STATUS, 0); /* reset */
  reg_write(VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE);
  reg_write(VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER);
  reg_write(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
  if (!(reg_read(mmio_base, VIRTIO_MMIO_DEVICE_FEATURES) & VIRTIO_F_VERSION_1_HIGH)) {
    reg_write(VIRTIO_MMIO_STATUS, STATUS_FAILED);
    return "device lacks VIRTIO_F_VERSION_1";
  }
  reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
  reg_write(VIRTIO_MMIO_DRIVER_FEATURES, 0);
  reg_write(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
  reg_write(VIRTIO_MMIO_DRIVER_FEATURES, VIRTIO_F_VERSION_1_HIGH);
  reg_write(VIRTIO_MMIO_STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK);
  if (!(reg_read(mmio_base, VIRTIO_MMIO_STATUS) & STATUS_FEATURES_OK)) {
    reg_write(VIRTIO_MMIO_STATUS, STATUS_FAILED);
    return "device refused the features";
  }
  for (unsigned i = 0; i < QUEUE_COUNT; i++) {
    const char *error = setup_queue(i);
    if (error) {
      reg_write(VIRTIO_MMIO_STATUS, STATUS_FAILED);
      return error;
    }
  }
  read_guest_cid();
  fill_rx();
  fill_event();
  init_tx();
  reg_write(VIRTIO_MMIO_STATUS, STATUS_RUNNING);
  if (reg_read(mmio_base, VIRTIO_MMIO_STATUS) != STATUS_RUNNING) return "device refused the queues";
  notify(QUEUE_RX);
  notify(QUEUE_EVENT);
  return NULL;
}

static void route_irq(void) {
  virtio_irq_mmio_base = mmio_base;
  lapic_enable();
  legacy_pic_mask();
  ioapic_route(device_irq, VECTOR_VIRTIO);
}

const char *vsock_init(const struct options *options) {
  for (unsigned i = 0; i < options->virtio_count; i++) {
    const struct virtio_mmio_option *d = &options->virtio[i];
    if (d->size < VIRTIO_MMIO_MIN_SIZE || d->irq >= IOAPIC_PINS || d->base >= 0x100000000ull) continue;
    if (reg_read(d->base, VIRTIO_MMIO_MAGIC) != VIRTIO_MMIO_MAGIC_VALUE) continue;
    if (reg_read(d->base, VIRTIO_MMIO_VERSION) != 2) continue; /* 1 is legacy */
    if (reg_read(d->base, VIRTIO_MMIO_DEVICE_ID) != VIRTIO_ID_VSOCK) continue;
    mmio_base = d->base;
    device_irq = d->irq;
    const char *error = device_init();
    if (error) return error;
    route_irq();
    return NULL;
  }
  return "no virtio-mmio vsock device";
}

const char *vsock_resume(void) {
  if (mmio_base == 0) return "no virtio-mmio vsock device";
  route_irq();
  if (reg_read(mmio_base, VIRTIO_MMIO_STATUS) == STATUS_RUNNING) return NULL;
  return device_init();
}

uint64_t vsock_guest_cid(void) { return guest_cid; }
uint64_t vsock_mmio_base(void) { return mmio_base; }
unsigned vsock_irq(void) { return device_irq; }

uint16_t vsock_rx_used_now(void) {
  uint16_t idx = used_idx(&queues[QUEUE_RX]);
  barrier(); /* the index before anything read after it (x86: loads stay in order) */
  return idx;
}

int vsock_rx_pending(void) { return queues[QUEUE_RX].last_used != used_idx(&queues[QUEUE_RX]); }

unsigned vsock_rx_poll_until(vsock_packet_handler handle, uint16_t until) {
  struct queue *q = &queues[QUEUE_RX];
  unsigned handled = 0;
  uint16_t mask = (uint16_t)(q->size - 1);
  /* Up to `until`, not past it: a handler that sends may poll the device
   * again (credit), and that inner poll can take last_used beyond `until`. */
  while ((int16_t)(uint16_t)(until - q->last_used) > 0) {
    barrier();
    struct virtq_used_elem elem = q->rings->used.ring[q->last_used & mask];
    q->last_used++;
    unsigned b = (elem.id & mask) / 2;
    const struct vsock_hdr *hdr = &rx_hdr[b];
    if (elem.len >= VSOCK_HDR_SIZE) {
      uint32_t len = hdr->len;
      uint32_t written = elem.len - VSOCK_HDR_SIZE;
      if (len > written) len = written; /* never trust more than the device wrote */
      handle(hdr, (const uint8_t *)(uintptr_t)rx_data(b), len);
      handled++;
    }
    q->rings->avail.ring[q->avail_idx & mask] = (uint16_t)(2 * b);
    q->avail_idx++;
  }
  if (handled) {
    publish(q);
    notify(QUEUE_RX);
  }
  return handled;
}

int vsock_event_poll(void) {
  struct queue *q = &queues[QUEUE_EVENT];
  int reset = 0;
  while (q->last_used != used_idx(q)) {
    barrier();
    q->last_used++;
    if (event_buffer[0] == VSOCK_EVENT_TRANSPORT_RESET) reset = 1;
    q->rings->avail.ring[q->avail_idx & (q->size - 1)] = 0;
    q->avail_idx++;
    publish(q);
    notify(QUEUE_EVENT);
  }
  if (reset) read_guest_cid();
  return reset;
}

void vsock_tx_reclaim(void) {
  struct queue *q = &queues[QUEUE_TX];
  uint16_t mask = (uint16_t)(q->size - 1);
  while (q->last_used != used_idx(q)) {
    barrier();
    uint32_t id = q->rings->used.ring[q->last_used & mask].id;
    q->last_used++;
    if (tx_free_count < tx_slot_count) tx_free_slots[tx_free_count++] = (uint8_t)((id & mask) / 2);
  }
}

unsigned vsock_tx_free(void) { return tx_free_count; }

int vsock_tx_idle(void) {
  vsock_tx_reclaim();
  return tx_free_count == tx_slot_count;
}

void vsock_tx_kick(void) {
  if (!tx_pending_kick) return;
  tx_pending_kick = 0;
  notify(QUEUE_TX);
}

void vsock_tx_queue(const struct vsock_hdr *hdr, const void *data, uint32_t len) {
  vsock_tx_reclaim();
  while (tx_free_count == 0) {
    vsock_tx_kick(); /* the device may not know about the full ring yet */
    vsock_wait();
    vsock_tx_reclaim();
  }
  struct queue *q = &queues[QUEUE_TX];
  unsigned s = tx_free_slots[--tx_free_count];
  tx_hdr[s] = *hdr;
  struct virtq_desc *desc = q->rings->desc;
  desc[2 * s] = (struct virtq_desc){(uintptr_t)&tx_hdr[s], VSOCK_HDR_SIZE, len ? VIRTQ_DESC_F_NEXT : 0,
                                    (uint16_t)(2 * s + 1)};
  if (len) desc[2 * s + 1] = (struct virtq_desc){(uintptr_t)data, len, 0, 0};
  q->rings->avail.ring[q->avail_idx & (q->size - 1)] = (uint16_t)(2 * s);
  q->avail_idx++;
  publish(q);
  tx_pending_kick = 1;
}
