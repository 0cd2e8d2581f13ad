/* thaw-mini: a minimal virtio-mmio (1.x, non-legacy) vsock driver.
 *
 * Three split virtqueues in static memory (rx 0, tx 1, event 2), up to 32
 * entries each. rx: 16 two-descriptor buffers (44-byte header + 64 KiB of
 * data at VSOCK_RX_BUFFERS_ADDR), recycled as soon as a packet was handled. tx: 16 slots, each a
 * header descriptor optionally chained to one data descriptor that points
 * straight at the caller's bytes (no copy). Interrupts come through the
 * IOAPIC (VECTOR_VIRTIO; traps.S acknowledges them); the caller polls the
 * used rings after every wake-up. Everything runs in ring 0 with interrupts
 * off except inside vsock_wait(). See README.md, "The vsock driver". */
#ifndef THAW_MINI_VIRTIO_VSOCK_H
#define THAW_MINI_VIRTIO_VSOCK_H

#include <stdint.h>

#include "layout.h"
#include "options.h"

/* struct virtio_vsock_hdr, little-endian, 44 bytes. */
struct __attribute__((packed)) vsock_hdr {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};

#define VSOCK_HDR_SIZE 44
#define VSOCK_TYPE_STREAM 1
#define VSOCK_OP_REQUEST 1
#define VSOCK_OP_RESPONSE 2
#define VSOCK_OP_RST 3
#define VSOCK_OP_SHUTDOWN 4
#define VSOCK_OP_RW 5
#define VSOCK_OP_CREDIT_UPDATE 6
#define VSOCK_OP_CREDIT_REQUEST 7
#define VSOCK_SHUTDOWN_RCV 1  /* the sender will receive no more */
#define VSOCK_SHUTDOWN_SEND 2 /* the sender will send no more */
#define VSOCK_HOST_CID 2
#define VSOCK_RX_DATA_SIZE VSOCK_RX_BUFFER_SIZE /* payload bytes per receive buffer (layout.h) */

/* Finds the first virtio_mmio.device= entry that is a virtio 1.x vsock
 * device (DeviceID 19), initialises it (feature VIRTIO_F_VERSION_1 only),
 * fills its rx and event queues and routes its IRQ through the IOAPIC.
 * Returns NULL on success, else why not (no device, refused features, ...). */
const char *vsock_init(const struct options *options);

/* After the boot-complete write (i.e. in every restored clone): routes the
 * IRQ again and re-initialises the device if it is not DRIVER_OK any more
 * (a VMM that restored no device state). Returns NULL or why it failed. */
const char *vsock_resume(void);

uint64_t vsock_guest_cid(void);
uint64_t vsock_mmio_base(void);
unsigned vsock_irq(void);

/* The rx used ring's index now. A caller that reads it before it looks at
 * the event queue sees every event the device published before those
 * packets (the device publishes a transport reset before any packet that
 * follows it). */
uint16_t vsock_rx_used_now(void);
/* Whether the rx used ring holds packets not yet handled. */
int vsock_rx_pending(void);

/* Hands each packet of the rx used ring up to index `until` to `handle`
 * (header, its payload, payload length already checked against the
 * buffer) and gives the buffers back to the device. Returns how many
 * packets it handled. */
typedef void (*vsock_packet_handler)(const struct vsock_hdr *hdr, const uint8_t *data, uint32_t len);
unsigned vsock_rx_poll_until(vsock_packet_handler handle, uint16_t until);

/* Recycles the event buffer; returns 1 if the device reported
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (the guest CID was re-read). */
int vsock_event_poll(void);

/* Takes back the tx slots the device is done with. */
void vsock_tx_reclaim(void);
/* Free tx slots now (after vsock_tx_reclaim). */
unsigned vsock_tx_free(void);
/* 1 when the device has given every tx slot back (data buffers reusable). */
int vsock_tx_idle(void);

/* Queues one packet: copies the 44-byte header into a free slot (waiting
 * for one if needed) and chains `data` (len bytes, may be 0) by address;
 * the data must stay unchanged until vsock_tx_idle(). The device is told
 * only by vsock_tx_kick(). */
void vsock_tx_queue(const struct vsock_hdr *hdr, const void *data, uint32_t len);
/* Notifies the device of queued tx packets (one exit), if there are any. */
void vsock_tx_kick(void);

/* Enables interrupts and halts until one arrives; returns with them off. */
static inline void vsock_wait(void) { __asm__ volatile("sti; hlt; cli" ::: "memory"); }

#endif
