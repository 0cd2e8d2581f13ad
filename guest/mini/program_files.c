/* thaw-mini function runtime: file descriptors and the calls on them.
 *
 * fd 0 reads the request's stdin from the mailbox (its first read is the
 * ready point), fds 1 and 2 append to the mailbox's stdout and stderr
 * buffers. Descriptors point at open file descriptions (shared by dup, with
 * one offset), which point at an index node or a /tmp file. Payload bytes
 * move with copy_for_user (program_copy.c): in ring 3 where it can. */
#include "program_runtime.h"

#define O_ACCMODE 3
#define O_RDONLY 0
#define O_WRONLY 1
#define O_APPEND 02000
#define IOV_MAX 1024

static const char exe_link_name[] = "proc/self/exe";

void files_init(struct program_runtime *rt) {
  struct cpio_index *index = &rt->index;
  uint32_t exe_len = 0;
  while (rt->info.exe_path[exe_len]) exe_len++;
  cpio_index_add(index, "dev/null", 8, MODE_CHAR_DEVICE | 0666, 0, 0, NODE_DEV_NULL);
  cpio_index_add(index, "dev/zero", 8, MODE_CHAR_DEVICE | 0666, 0, 0, NODE_DEV_ZERO);
  cpio_index_add(index, "dev/urandom", 11, MODE_CHAR_DEVICE | 0666, 0, 0, NODE_DEV_RANDOM);
  cpio_index_add(index, "dev/random", 10, MODE_CHAR_DEVICE | 0666, 0, 0, NODE_DEV_RANDOM);
  cpio_index_add(index, "tmp", 3, MODE_DIR | 01777, 0, 0, NODE_TMP_DIR);
  cpio_index_add(index, exe_link_name, sizeof exe_link_name - 1, MODE_SYMLINK | 0777,
                 (const uint8_t *)rt->info.exe_path, exe_len, NODE_PLAIN);
  for (int fd = 0; fd < PROGRAM_MAX_FDS; fd++) rt->fds[fd] = -1;
  static const uint32_t std_kinds[3] = {FILE_STDIN, FILE_STDOUT, FILE_STDERR};
  for (int fd = 0; fd < 3; fd++) {
    rt->open_files[fd].refs = 1;
    rt->open_files[fd].kind = std_kinds[fd];
    rt->open_files[fd].flags = fd == 0 ? O_RDONLY : O_WRONLY;
    rt->fds[fd] = (int16_t)fd;
  }
  rt->cwd = CPIO_ROOT;
}

struct open_file *fd_file(struct program_runtime *rt, int64_t fd) {
  if (fd < 0 || fd >= PROGRAM_MAX_FDS || rt->fds[fd] < 0) return 0;
  return &rt->open_files[rt->fds[fd]];
}

static const struct cpio_node *file_node(const struct program_runtime *rt, const struct open_file *file) {
  return file->kind == FILE_NODE ? &rt->index.nodes[file->node] : 0;
}

static int is_dir(const struct cpio_node *node) { return node && (node->mode & MODE_TYPE_MASK) == MODE_DIR; }

/* ---- read ----------------------------------------------------------------- */

/* Reads into user [buf, buf + len) at *offset (advanced); the file is
 * readable and the buffer checked. */
static int64_t read_at(struct program_runtime *rt, struct open_file *file, uint64_t buf, uint64_t len,
                       uint64_t *offset) {
  uint8_t *out = (uint8_t *)user_ptr(rt, buf);
  const uint8_t *data;
  uint64_t size;
  if (file->kind == FILE_STDIN) {
    if (!rt->ready) program_ready(rt);
    uint64_t n = rt->stdin_len - rt->stdin_pos;
    if (n > len) n = len;
    copy_for_user(rt, out, rt->stdin_data + rt->stdin_pos, n);
    rt->stdin_pos += n;
    return (int64_t)n;
  }
  if (file->kind == FILE_TMP) {
    data = (const uint8_t *)user_ptr(rt, rt->tmp[file->node].addr);
    size = rt->tmp[file->node].size;
  } else {
    const struct cpio_node *node = file_node(rt, file);
    if (!node) return -PERR_BADF;
    if (is_dir(node)) return -PERR_ISDIR;
    if (node->special == NODE_DEV_NULL) return 0;
    if (node->special == NODE_DEV_ZERO) {
      __builtin_memset(out, 0, len);
      return (int64_t)len;
    }
    if (node->special == NODE_DEV_RANDOM) return sys_getrandom(rt, buf, len);
    data = node->data;
    size = node->size;
  }
  if (*offset >= size) return 0;
  uint64_t n = size - *offset < len ? size - *offset : len;
  copy_for_user(rt, out, data + *offset, n);
  *offset += n;
  return (int64_t)n;
}

static struct open_file *readable(struct program_runtime *rt, int64_t fd, int64_t *error) {
  struct open_file *file = fd_file(rt, fd);
  *error = -PERR_BADF;
  if (!file || (file->flags & O_ACCMODE) == O_WRONLY || file->kind == FILE_STDOUT || file->kind == FILE_STDERR) {
    return 0;
  }
  return file;
}

int64_t sys_read(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len) {
  int64_t error;
  struct open_file *file = readable(rt, fd, &error);
  if (!file) return error;
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  return read_at(rt, file, buf, len, &file->offset);
}

int64_t sys_pread(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len, int64_t offset) {
  int64_t error;
  struct open_file *file = readable(rt, fd, &error);
  if (!file) return error;
  if (file->kind == FILE_STDIN) return -PERR_SPIPE;
  if (offset < 0) return -PERR_INVAL;
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  uint64_t at = (uint64_t)offset;
  return read_at(rt, file, buf, len, &at);
}

/* ---- write ---------------------------------------------------------------- */

/* stdout/stderr: append to the mailbox. Before the ready point the excess is
 * dropped (that output is discarded anyway); after it, overflowing ends the
 * program with OUTCOME_OUTPUT_LIMIT. */
static int64_t write_output(struct program_runtime *rt, int is_stderr, const uint8_t *src, uint64_t len) {
  uint64_t *used = is_stderr ? &rt->mailbox->stderr_len : &rt->mailbox->stdout_len;
  uint8_t *base = is_stderr ? rt->stderr_data : rt->stdout_data;
  uint64_t capacity = is_stderr ? MAILBOX_STDERR_CAPACITY : MAILBOX_STDOUT_CAPACITY;
  uint64_t room = capacity - *used;
  uint64_t n = len < room ? len : room;
  copy_for_user(rt, base + *used, src, n);
  *used += n;
  if (n < len && rt->ready) program_finish(rt, OUTCOME_OUTPUT_LIMIT, 0); /* runs the queue in ring 0 */
  return (int64_t)len;
}

static int64_t write_at(struct program_runtime *rt, struct open_file *file, uint64_t buf, uint64_t len,
                        uint64_t *offset) {
  const uint8_t *src = (const uint8_t *)user_ptr(rt, buf);
  if (file->kind == FILE_STDOUT || file->kind == FILE_STDERR) {
    return write_output(rt, file->kind == FILE_STDERR, src, len);
  }
  if (file->kind == FILE_TMP) {
    /* Growing may move the file's bytes: queued copies into it go first. */
    program_run_pending_copies(rt);
    struct tmp_file *tmp = &rt->tmp[file->node];
    uint64_t at = (file->flags & O_APPEND) ? tmp->size : *offset;
    if (at + len < at) return -PERR_INVAL;
    int64_t error = tmp_reserve(rt, tmp, at + len);
    if (error) return error;
    /* The program may pass the file's own storage (user memory) as buf. */
    __builtin_memmove(user_ptr(rt, tmp->addr + at), src, len);
    if (at + len > tmp->size) tmp->size = at + len;
    *offset = at + len;
    return (int64_t)len;
  }
  const struct cpio_node *node = file_node(rt, file);
  if (node && node->special != NODE_PLAIN && node->special != NODE_TMP_DIR) return (int64_t)len; /* devices */
  return -PERR_BADF;
}

static struct open_file *writable(struct program_runtime *rt, int64_t fd) {
  struct open_file *file = fd_file(rt, fd);
  if (!file || (file->flags & O_ACCMODE) == O_RDONLY || file->kind == FILE_STDIN) return 0;
  return file;
}

int64_t sys_write(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len) {
  struct open_file *file = writable(rt, fd);
  if (!file) return -PERR_BADF;
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  return write_at(rt, file, buf, len, &file->offset);
}

int64_t sys_pwrite(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len, int64_t offset) {
  struct open_file *file = writable(rt, fd);
  if (!file) return -PERR_BADF;
  if (file->kind != FILE_TMP && file->kind != FILE_NODE) return -PERR_SPIPE;
  if (offset < 0) return -PERR_INVAL;
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  uint64_t at = (uint64_t)offset;
  uint32_t flags = file->flags;
  file->flags &= ~(uint32_t)O_APPEND; /* pwrite writes where it is told */
  int64_t result = write_at(rt, file, buf, len, &at);
  file->flags = flags;
  return result;
}

/* readv/writev: one call per iovec; stops at a short transfer or the end. */
static int64_t vector_io(struct program_runtime *rt, int64_t fd, uint64_t iov, uint64_t count, int write) {
  if (count > IOV_MAX) return -PERR_INVAL;
  if (!user_range_ok(rt, iov, count * 16)) return -PERR_FAULT;
  /* A program may put its iovecs at any address: copied, not dereferenced as uint64_t. */
  const uint8_t *vec = (const uint8_t *)user_ptr(rt, iov);
  int64_t total = 0;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t base, len;
    __builtin_memcpy(&base, vec + 16 * i, 8);
    __builtin_memcpy(&len, vec + 16 * i + 8, 8);
    if (len == 0) continue;
    int64_t n = write ? sys_write(rt, fd, base, len) : sys_read(rt, fd, base, len);
    if (n < 0) return total ? total : n;
    total += n;
    if ((uint64_t)n < len || rt->finished) break;
  }
  return total;
}

int64_t sys_readv(struct program_runtime *rt, int64_t fd, uint64_t iov, uint64_t count) {
  return vector_io(rt, fd, iov, count, 0);
}

int64_t sys_writev(struct program_runtime *rt, int64_t fd, uint64_t iov, uint64_t count) {
  return vector_io(rt, fd, iov, count, 1);
}
