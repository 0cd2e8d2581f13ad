/* thaw-mini: an index over a cpio "newc" archive (the program's files), plus
 * the synthetic nodes the runtime adds (/dev/null, /tmp, ...). Pure C: no
 * inline asm, buildable for the host's unit tests.
 *
 * The index is built once, before the ready point, so its cost is in the
 * snapshot and never paid by a request. Names point into the archive (or at
 * static strings); an implied parent directory reuses a prefix of its
 * child's name, so the index stores no strings of its own. */
#ifndef THAW_MINI_CPIO_READER_H
#define THAW_MINI_CPIO_READER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CPIO_MAX_NODES 1024
#define CPIO_ROOT 0 /* node 0 is always the root directory "" */

/* File-type bits of st_mode (Linux's values). */
#define MODE_TYPE_MASK 0170000
#define MODE_DIR 0040000
#define MODE_REGULAR 0100000
#define MODE_SYMLINK 0120000
#define MODE_CHAR_DEVICE 0020000
#define MODE_FIFO 0010000

/* What a node is beyond its mode: the runtime's device files and /tmp. */
enum node_special {
  NODE_PLAIN,      /* archive file, directory or symlink */
  NODE_DEV_NULL,
  NODE_DEV_ZERO,
  NODE_DEV_RANDOM, /* /dev/urandom and /dev/random */
  NODE_TMP_DIR,    /* /tmp: its files live in the runtime's tmp table */
};

struct cpio_node {
  const char *name;    /* normalized: no leading "./" or "/", no trailing "/" */
  const uint8_t *data; /* file contents or symlink target */
  uint64_t size;
  uint64_t mtime;
  uint32_t name_len;
  uint32_t mode;
  uint32_t parent;     /* node index of the containing directory */
  uint32_t special;    /* enum node_special */
};

struct cpio_index {
  uint32_t count;
  uint32_t dropped; /* entries that did not fit CPIO_MAX_NODES */
  struct cpio_node nodes[CPIO_MAX_NODES];
};

/* Empties the index down to the root directory. */
void cpio_index_reset(struct cpio_index *index);

/* Adds every entry of a newc archive (magic 070701 or 070702) up to its
 * TRAILER!!!. Returns 0, or -1 if the archive is malformed (the entries read
 * before the damage stay). Later duplicates replace earlier entries. */
int cpio_index_add_archive(struct cpio_index *index, const uint8_t *archive, uint64_t size);

/* Adds (or replaces) one node and any missing parent directories. `name` must
 * stay valid as long as the index. Returns the node, or -1 if full. */
int32_t cpio_index_add(struct cpio_index *index, const char *name, uint32_t name_len, uint32_t mode,
                       const uint8_t *data, uint64_t size, uint32_t special);

/* The node with exactly this normalized name, or -1. */
int32_t cpio_index_find(const struct cpio_index *index, const char *name, uint32_t name_len);

#ifdef __cplusplus
}
#endif

#endif
