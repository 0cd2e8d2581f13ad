/* thaw-mini: cpio newc index (see cpio_reader.h). Runs before the ready
 * point only, so plain loops are fine here. */
#include "cpio_reader.h"

#define NEWC_HEADER_SIZE 110
#define NEWC_FIELD(n) (6 + 8 * (n)) /* offset of the n-th 8-digit hex field */
#define FIELD_MODE 1
#define FIELD_MTIME 5
#define FIELD_FILESIZE 6
#define FIELD_NAMESIZE 11

static int names_equal(const char *a, uint32_t a_len, const char *b, uint32_t b_len) {
  if (a_len != b_len) return 0;
  for (uint32_t i = 0; i < a_len; i++) {
    if (a[i] != b[i]) return 0;
  }
  return 1;
}

void cpio_index_reset(struct cpio_index *index) {
  index->count = 1;
  index->dropped = 0;
  struct cpio_node *root = &index->nodes[CPIO_ROOT];
  root->name = "";
  root->name_len = 0;
  root->data = 0;
  root->size = 0;
  root->mtime = 0;
  root->mode = MODE_DIR | 0755;
  root->parent = CPIO_ROOT;
  root->special = NODE_PLAIN;
}

int32_t cpio_index_find(const struct cpio_index *index, const char *name, uint32_t name_len) {
  for (uint32_t i = 0; i < index->count; i++) {
    const struct cpio_node *node = &index->nodes[i];
    if (names_equal(node->name, node->name_len, name, name_len)) return (int32_t)i;
  }
  return -1;
}

/* The directory holding `name` (adding it, and its parents, if missing). */
static int32_t parent_of(struct cpio_index *index, const char *name, uint32_t name_len) {
  uint32_t slash = name_len;
  while (slash > 0 && name[slash - 1] != '/') slash--;
  if (slash == 0) return CPIO_ROOT;
  int32_t parent = cpio_index_find(index, name, slash - 1);
  if (parent >= 0) return parent;
  return cpio_index_add(index, name, slash - 1, MODE_DIR | 0755, 0, 0, NODE_PLAIN);
}

int32_t cpio_index_add(struct cpio_index *index, const char *name, uint32_t name_len, uint32_t mode,
                       const uint8_t *data, uint64_t size, uint32_t special) {
  if (name_len == 0) { /* "." itself: the root keeps its node, takes the mode */
    if ((mode & MODE_TYPE_MASK) == MODE_DIR) index->nodes[CPIO_ROOT].mode = mode;
    return CPIO_ROOT;
  }
  int32_t parent = parent_of(index, name, name_len);
  if (parent < 0) return -1;
  int32_t slot = cpio_index_find(index, name, name_len);
  if (slot < 0) {
    if (index->count == CPIO_MAX_NODES) {
      index->dropped++;
      return -1;
    }
    slot = (int32_t)index->count++;
  }
  struct cpio_node *node = &index->nodes[slot];
  node->name = name;
  node->name_len = name_len;
  node->mode = mode;
  node->data = data;
  node->size = size;
  node->mtime = 0;
  node->parent = (uint32_t)parent;
  node->special = special;
  return slot;
}

/* Eight hex digits; -1 if any is not one. */
static int64_t hex_field(const uint8_t *header, int field) {
  const uint8_t *p = header + NEWC_FIELD(field);
  uint64_t value = 0;
  for (int i = 0; i < 8; i++) {
    uint8_t c = p[i];
    uint64_t digit;
    if (c >= '0' && c <= '9') digit = (uint64_t)(c - '0');
    else if (c >= 'a' && c <= 'f') digit = (uint64_t)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') digit = (uint64_t)(c - 'A' + 10);
    else return -1;
    value = value << 4 | digit;
  }
  return (int64_t)value;
}

static uint64_t align4(uint64_t value) { return (value + 3) & ~(uint64_t)3; }

int cpio_index_add_archive(struct cpio_index *index, const uint8_t *archive, uint64_t size) {
  uint64_t at = 0;
  while (at + NEWC_HEADER_SIZE <= size) {
    const uint8_t *header = archive + at;
    if (header[0] != '0' || header[1] != '7' || header[2] != '0' || header[3] != '7' ||
        header[4] != '0' || (header[5] != '1' && header[5] != '2')) {
      return -1;
    }
    int64_t mode = hex_field(header, FIELD_MODE);
    int64_t mtime = hex_field(header, FIELD_MTIME);
    int64_t file_size = hex_field(header, FIELD_FILESIZE);
    int64_t name_size = hex_field(header, FIELD_NAMESIZE);
    if (mode < 0 || mtime < 0 || file_size < 0 || name_size < 1) return -1;
    uint64_t name_at = at + NEWC_HEADER_SIZE;
    if ((uint64_t)name_size > size - name_at) return -1;
    const char *name = (const char *)archive + name_at;
    uint32_t name_len = (uint32_t)name_size - 1; /* namesize counts the NUL */
    uint64_t data_at = align4(name_at + (uint64_t)name_size);
    if (data_at > size || (uint64_t)file_size > size - data_at) return -1;
    if (names_equal(name, name_len, "TRAILER!!!", 10)) return 0;
    /* Normalize: "./a/b/", "/a/b" and "a/b" all name "a/b". */
    for (;;) {
      if (name_len >= 2 && name[0] == '.' && name[1] == '/') {
        name += 2;
        name_len -= 2;
      } else if (name_len >= 1 && name[0] == '/') {
        name++;
        name_len--;
      } else {
        break;
      }
    }
    while (name_len > 0 && name[name_len - 1] == '/') name_len--;
    if (name_len == 1 && name[0] == '.') name_len = 0;
    int32_t node = cpio_index_add(index, name, name_len, (uint32_t)mode, archive + data_at,
                                  (uint64_t)file_size, NODE_PLAIN);
    if (node >= 0) index->nodes[node].mtime = (uint64_t)mtime;
    at = align4(data_at + (uint64_t)file_size);
  }
  return at == size ? 0 : -1; /* an archive without a trailer is fine if it ends cleanly */
}
