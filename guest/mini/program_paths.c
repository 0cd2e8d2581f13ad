/* thaw-mini function runtime: path names, lookup, stat, and /tmp.
 *
 * The file tree is the cpio index (read-only) plus synthetic nodes:
 * /dev/null, /dev/zero, /dev/urandom, /dev/random, /proc/self/exe (a symlink
 * to info.exe_path) and /tmp, whose files live in the tmp table with their
 * bytes in the program's mmap area. Paths are normalized as strings ("." and
 * ".." folded, relative to the working directory or a directory fd); only a
 * final symlink is followed. */
#include "program_runtime.h"

#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_EMPTY_PATH 0x1000
#define SYMLINK_DEPTH 8
#define TMP_MIN_CAPACITY 0x10000ull
#define TMP_INODE_BASE 100000
#define INODE_BASE 16

static const char tmp_prefix[] = "tmp/";

/* Appends the components of rel to out[0, len) ("" = root). */
static int64_t join(char *out, uint32_t len, const char *rel, uint32_t rel_len) {
  uint32_t at = 0;
  while (at < rel_len) {
    while (at < rel_len && rel[at] == '/') at++;
    uint32_t start = at;
    while (at < rel_len && rel[at] != '/') at++;
    uint32_t n = at - start;
    if (n == 0 || (n == 1 && rel[start] == '.')) continue;
    if (n == 2 && rel[start] == '.' && rel[start + 1] == '.') {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      continue;
    }
    if (len + 1 + n >= PROGRAM_PATH_MAX) return -PERR_NAMETOOLONG;
    if (len) out[len++] = '/';
    for (uint32_t i = 0; i < n; i++) out[len++] = rel[start + i];
  }
  out[len] = '\0';
  return len;
}

static uint32_t copy_name(char *out, const char *name, uint32_t len) {
  for (uint32_t i = 0; i < len; i++) out[i] = name[i];
  out[len] = '\0';
  return len;
}

int64_t path_normalize(struct program_runtime *rt, int64_t dirfd, const char *path, char *out) {
  uint32_t path_len = 0;
  while (path[path_len]) path_len++;
  if (path_len == 0) return -PERR_NOENT;
  uint32_t len = 0;
  if (path[0] != '/') {
    uint32_t base = rt->cwd;
    if (dirfd != AT_FDCWD) {
      struct open_file *file = fd_file(rt, dirfd);
      if (!file) return -PERR_BADF;
      if (file->kind != FILE_NODE || (rt->index.nodes[file->node].mode & MODE_TYPE_MASK) != MODE_DIR) {
        return -PERR_NOTDIR;
      }
      base = file->node;
    }
    len = copy_name(out, rt->index.nodes[base].name, rt->index.nodes[base].name_len);
  }
  return join(out, len, path, path_len);
}

static int is_tmp_name(const char *name, uint32_t len) {
  if (len <= 4) return 0;
  for (uint32_t i = 0; i < 4; i++) {
    if (name[i] != tmp_prefix[i]) return 0;
  }
  for (uint32_t i = 4; i < len; i++) {
    if (name[i] == '/') return 0;
  }
  return 1;
}

static int32_t tmp_find(const struct program_runtime *rt, const char *name, uint32_t len) {
  for (int32_t slot = 0; slot < PROGRAM_MAX_TMP_FILES; slot++) {
    const struct tmp_file *file = &rt->tmp[slot];
    if (!file->linked || file->name_len != len) continue;
    uint32_t i = 0;
    while (i < len && file->name[i] == name[i]) i++;
    if (i == len) return slot;
  }
  return -1;
}

int64_t path_lookup(struct program_runtime *rt, const char *name, uint32_t len, int follow,
                    struct lookup *found) {
  char target[PROGRAM_PATH_MAX];
  for (int depth = 0;; depth++) {
    found->node = -1;
    found->tmp = -1;
    if (is_tmp_name(name, len)) {
      found->tmp = tmp_find(rt, name + 4, len - 4);
      return found->tmp < 0 ? -PERR_NOENT : 0;
    }
    found->node = cpio_index_find(&rt->index, name, len);
    if (found->node < 0) return -PERR_NOENT;
    const struct cpio_node *node = &rt->index.nodes[found->node];
    if (!follow || (node->mode & MODE_TYPE_MASK) != MODE_SYMLINK) return 0;
    if (depth == SYMLINK_DEPTH) return -PERR_LOOP;
    /* Resolve the target from the link's directory (or the root). */
    uint32_t base_len = 0;
    if (node->size == 0 || node->size >= PROGRAM_PATH_MAX) return -PERR_NOENT;
    if (node->data[0] != '/') {
      const struct cpio_node *parent = &rt->index.nodes[node->parent];
      base_len = copy_name(target, parent->name, parent->name_len);
    }
    int64_t joined = join(target, base_len, (const char *)node->data, (uint32_t)node->size);
    if (joined < 0) return joined;
    name = target;
    len = (uint32_t)joined;
  }
}

int64_t user_path_lookup(struct program_runtime *rt, int64_t dirfd, uint64_t path, int follow,
                         struct lookup *found, char *name, uint32_t *name_len) {
  /* Defined on every return: open(O_CREAT) reads the name after -ENOENT,
   * and "" (or a path that fails before it is normalized) must not leave it
   * the stack's old bytes (fuzz_guest_syscalls found a create that read
   * past name[] with a stale length). */
  name[0] = '\0';
  *name_len = 0;
  char raw[PROGRAM_PATH_MAX];
  int64_t n = copy_user_string(rt, path, raw, sizeof raw);
  if (n < 0) return n;
  n = path_normalize(rt, dirfd, raw, name);
  if (n < 0) return n;
  *name_len = (uint32_t)n;
  return path_lookup(rt, name, (uint32_t)n, follow, found);
}

/* ---- stat ---------------------------------------------------------------- */

struct stat_info {
  uint64_t ino, mode, size, nlink, rdev, mtime;
};

static void describe_node(const struct program_runtime *rt, uint32_t index, struct stat_info *si) {
  const struct cpio_node *node = &rt->index.nodes[index];
  si->ino = INODE_BASE + index;
  si->mode = node->mode;
  si->size = (node->mode & MODE_TYPE_MASK) == MODE_DIR ? 4096 : node->size;
  si->nlink = (node->mode & MODE_TYPE_MASK) == MODE_DIR ? 2 : 1;
  si->mtime = node->mtime;
  si->rdev = 0;
  if (node->special == NODE_DEV_NULL) si->rdev = 0x103;
  if (node->special == NODE_DEV_ZERO) si->rdev = 0x105;
  if (node->special == NODE_DEV_RANDOM) si->rdev = 0x109;
}

static void describe_tmp(const struct program_runtime *rt, uint32_t slot, struct stat_info *si) {
  si->ino = TMP_INODE_BASE + slot;
  si->mode = MODE_REGULAR | rt->tmp[slot].mode;
  si->size = rt->tmp[slot].size;
  si->nlink = rt->tmp[slot].linked;
  si->rdev = 0;
  si->mtime = 0;
}

static void describe_file(const struct program_runtime *rt, const struct open_file *file, struct stat_info *si) {
  if (file->kind == FILE_NODE) return describe_node(rt, file->node, si);
  if (file->kind == FILE_TMP) return describe_tmp(rt, file->node, si);
  /* stdin, stdout and stderr look like pipes: read to EOF, no seeking. */
  si->ino = file->kind;
  si->mode = MODE_FIFO | 0600;
  si->size = 0;
  si->nlink = 1;
  si->rdev = 0;
  si->mtime = 0;
}

static int64_t put_stat(struct program_runtime *rt, const struct stat_info *si, uint64_t buf) {
  if (!user_range_ok(rt, buf, 144)) return -PERR_FAULT;
  uint64_t st[18];
  __builtin_memset(st, 0, sizeof st);
  st[0] = 1;                                   /* st_dev */
  st[1] = si->ino;
  st[2] = si->nlink;
  st[3] = si->mode;                            /* st_mode (u32), st_uid = 0 */
  st[5] = si->rdev;
  st[6] = si->size;
  st[7] = 4096;                                /* st_blksize */
  st[8] = (si->size + 511) / 512;              /* st_blocks */
  st[9] = st[11] = st[13] = si->mtime;         /* atime, mtime, ctime seconds */
  __builtin_memcpy(user_ptr(rt, buf), st, 144);
  return 0;
}

static int64_t put_statx(struct program_runtime *rt, const struct stat_info *si, uint64_t buf) {
  if (!user_range_ok(rt, buf, 256)) return -PERR_FAULT;
  uint8_t sx[256];
  __builtin_memset(sx, 0, sizeof sx);
  uint32_t mask = 0x7ff, blksize = 4096, nlink = (uint32_t)si->nlink, rdev_major = (uint32_t)(si->rdev >> 8);
  uint32_t rdev_minor = (uint32_t)(si->rdev & 0xff);
  uint16_t mode = (uint16_t)si->mode;
  uint64_t blocks = (si->size + 511) / 512;
  __builtin_memcpy(sx + 0x00, &mask, 4);
  __builtin_memcpy(sx + 0x04, &blksize, 4);
  __builtin_memcpy(sx + 0x10, &nlink, 4);
  __builtin_memcpy(sx + 0x1c, &mode, 2);
  __builtin_memcpy(sx + 0x20, &si->ino, 8);
  __builtin_memcpy(sx + 0x28, &si->size, 8);
  __builtin_memcpy(sx + 0x30, &blocks, 8);
  for (int t = 0; t < 4; t++) __builtin_memcpy(sx + 0x40 + 16 * t, &si->mtime, 8);
  __builtin_memcpy(sx + 0x80, &rdev_major, 4);
  __builtin_memcpy(sx + 0x84, &rdev_minor, 4);
  __builtin_memcpy(user_ptr(rt, buf), sx, sizeof sx);
  return 0;
}

int64_t fill_stat(struct program_runtime *rt, const struct open_file *file, uint64_t statbuf) {
  struct stat_info si;
  describe_file(rt, file, &si);
  return put_stat(rt, &si, statbuf);
}

int64_t fill_statx(struct program_runtime *rt, const struct open_file *file, uint64_t statxbuf) {
  struct stat_info si;
  describe_file(rt, file, &si);
  return put_statx(rt, &si, statxbuf);
}

int64_t sys_newfstatat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t statbuf,
                       uint64_t flags, int statx) {
  struct stat_info si;
  char first;
  if ((flags & AT_EMPTY_PATH) && user_range_ok(rt, path, 1) &&
      (first = *(const char *)user_ptr(rt, path)) == '\0') {
    struct open_file *file = fd_file(rt, dirfd);
    if (!file) return -PERR_BADF;
    describe_file(rt, file, &si);
  } else {
    char name[PROGRAM_PATH_MAX];
    uint32_t len;
    struct lookup found;
    int64_t error = user_path_lookup(rt, dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW), &found, name, &len);
    if (error) return error;
    if (found.tmp >= 0) describe_tmp(rt, (uint32_t)found.tmp, &si);
    else describe_node(rt, (uint32_t)found.node, &si);
  }
  return statx ? put_statx(rt, &si, statbuf) : put_stat(rt, &si, statbuf);
}

int64_t sys_readlinkat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t buf, uint64_t len) {
  if ((int64_t)len <= 0) return -PERR_INVAL;
  char name[PROGRAM_PATH_MAX];
  uint32_t name_len;
  struct lookup found;
  int64_t error = user_path_lookup(rt, dirfd, path, 0, &found, name, &name_len);
  if (error) return error;
  if (found.node < 0) return -PERR_INVAL;
  const struct cpio_node *node = &rt->index.nodes[found.node];
  if ((node->mode & MODE_TYPE_MASK) != MODE_SYMLINK) return -PERR_INVAL;
  uint64_t n = node->size < len ? node->size : len;
  if (!user_range_ok(rt, buf, n)) return -PERR_FAULT;
  __builtin_memcpy(user_ptr(rt, buf), node->data, n);
  return (int64_t)n;
}

int64_t sys_faccessat(struct program_runtime *rt, int64_t dirfd, uint64_t path) {
  char name[PROGRAM_PATH_MAX];
  uint32_t len;
  struct lookup found;
  return user_path_lookup(rt, dirfd, path, 1, &found, name, &len); /* exists: allowed */
}

int64_t sys_chdir(struct program_runtime *rt, uint64_t path) {
  char name[PROGRAM_PATH_MAX];
  uint32_t len;
  struct lookup found;
  int64_t error = user_path_lookup(rt, AT_FDCWD, path, 1, &found, name, &len);
  if (error) return error;
  if (found.node < 0 || (rt->index.nodes[found.node].mode & MODE_TYPE_MASK) != MODE_DIR) return -PERR_NOTDIR;
  rt->cwd = (uint32_t)found.node;
  return 0;
}

int64_t sys_getcwd(struct program_runtime *rt, uint64_t buf, uint64_t len) {
  const struct cpio_node *cwd = &rt->index.nodes[rt->cwd];
  uint64_t need = 1 + cwd->name_len + 1; /* "/", the name, the NUL */
  if (len < need) return -PERR_RANGE;
  if (!user_range_ok(rt, buf, need)) return -PERR_FAULT;
  char *out = (char *)user_ptr(rt, buf);
  out[0] = '/';
  __builtin_memcpy(out + 1, cwd->name, cwd->name_len);
  out[need - 1] = '\0';
  return (int64_t)need;
}

/* ---- /tmp ---------------------------------------------------------------- */

static void tmp_free(struct program_runtime *rt, struct tmp_file *file) {
  if (file->capacity) memory_release(rt, file->addr, file->capacity);
  file->addr = file->capacity = file->size = 0;
}

int64_t sys_unlinkat(struct program_runtime *rt, int64_t dirfd, uint64_t path) {
  char name[PROGRAM_PATH_MAX];
  uint32_t len;
  struct lookup found;
  int64_t error = user_path_lookup(rt, dirfd, path, 0, &found, name, &len);
  if (error) return error;
  if (found.tmp < 0) return -PERR_ROFS; /* the archive is read-only */
  struct tmp_file *file = &rt->tmp[found.tmp];
  file->linked = 0;
  if (file->opens == 0) tmp_free(rt, file);
  return 0;
}

int64_t tmp_create(struct program_runtime *rt, const char *name, uint32_t len, uint32_t mode) {
  if (!is_tmp_name(name, len)) return -PERR_ROFS; /* only flat /tmp is writable */
  if (len - 4 > PROGRAM_TMP_NAME_MAX) return -PERR_NAMETOOLONG;
  for (int32_t slot = 0; slot < PROGRAM_MAX_TMP_FILES; slot++) {
    struct tmp_file *file = &rt->tmp[slot];
    if (file->linked || file->opens) continue;
    __builtin_memcpy(file->name, name + 4, len - 4);
    file->name_len = len - 4;
    file->linked = 1;
    file->mode = mode & 0777 & ~rt->umask;
    file->addr = file->capacity = file->size = 0;
    return slot;
  }
  return -PERR_NOSPC;
}

int64_t tmp_reserve(struct program_runtime *rt, struct tmp_file *file, uint64_t size) {
  if (size > file->capacity) {
    uint64_t capacity = file->capacity * 2;
    if (capacity < TMP_MIN_CAPACITY) capacity = TMP_MIN_CAPACITY;
    if (capacity < size) capacity = size;
    uint64_t addr = memory_allocate(rt, capacity);
    if (addr == 0) return -PERR_NOSPC;
    capacity = (capacity + PROGRAM_PAGE_SIZE - 1) & ~(PROGRAM_PAGE_SIZE - 1);
    if (file->size) __builtin_memcpy(user_ptr(rt, addr), user_ptr(rt, file->addr), file->size);
    if (file->capacity) memory_release(rt, file->addr, file->capacity);
    file->addr = addr;
    file->capacity = capacity;
  }
  if (size > file->size) __builtin_memset(user_ptr(rt, file->addr + file->size), 0, size - file->size);
  return 0;
}

void tmp_release(struct program_runtime *rt, uint32_t slot) {
  struct tmp_file *file = &rt->tmp[slot];
  if (file->opens) file->opens--;
  if (!file->linked && file->opens == 0) tmp_free(rt, file);
}
