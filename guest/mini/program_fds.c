/* thaw-mini function runtime: opening, closing and duplicating descriptors,
 * and the calls that inspect them (lseek, getdents64, fcntl, ioctl, poll). */
#include "program_runtime.h"

#define O_ACCMODE 3
#define O_RDONLY 0
#define O_CREAT 0100
#define O_EXCL 0200
#define O_TRUNC 01000
#define O_DIRECTORY 0200000
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#define O_TMPFILE_ONLY 020000000
#define F_DUPFD 0
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define F_SETLK 6
#define F_SETLKW 7
#define F_DUPFD_CLOEXEC 1030
#define FD_CLOEXEC 1
#define SETFL_MASK (02000 | 04000) /* O_APPEND, O_NONBLOCK */
#define POLLIN 0x1
#define POLLOUT 0x4
#define POLLHUP 0x10
#define POLLNVAL 0x20
#define POLLRDNORM 0x40
#define POLLWRNORM 0x100
#define POLL_MAX 1024
#define EOPNOTSUPP 95

static int32_t new_open_file(struct program_runtime *rt) {
  for (int32_t i = 0; i < PROGRAM_MAX_OPEN_FILES; i++) {
    if (rt->open_files[i].refs == 0) return i;
  }
  return -1;
}

static int64_t lowest_free_fd(const struct program_runtime *rt, int64_t from) {
  for (int64_t fd = from; fd < PROGRAM_MAX_FDS; fd++) {
    if (rt->fds[fd] < 0) return fd;
  }
  return -PERR_MFILE;
}

static void drop_open_file(struct program_runtime *rt, int16_t slot) {
  struct open_file *file = &rt->open_files[slot];
  if (--file->refs) return;
  if (file->kind == FILE_TMP) tmp_release(rt, file->node);
  file->kind = FILE_FREE;
}

int64_t sys_openat(struct program_runtime *rt, int64_t dirfd, uint64_t path, uint64_t flags, uint64_t mode) {
  if (flags & O_TMPFILE_ONLY) return -EOPNOTSUPP;
  if ((flags & O_ACCMODE) == O_ACCMODE) return -PERR_INVAL;
  char name[PROGRAM_PATH_MAX];
  uint32_t len;
  struct lookup found;
  int64_t error = user_path_lookup(rt, dirfd, path, !(flags & O_NOFOLLOW), &found, name, &len);
  int writing = (flags & O_ACCMODE) != O_RDONLY;
  if (error == -PERR_NOENT && (flags & O_CREAT) && len > 0) { /* len 0: "" is ENOENT, as on Linux */
    int64_t slot = tmp_create(rt, name, len, (uint32_t)mode);
    if (slot < 0) return slot;
    found.tmp = (int32_t)slot;
    found.node = -1;
  } else if (error) {
    return error;
  } else if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL)) {
    return -PERR_EXIST;
  }
  int64_t fd = lowest_free_fd(rt, 0);
  int32_t slot = new_open_file(rt);
  if (fd < 0 || slot < 0) return -PERR_MFILE; /* a file created just now stays, empty */
  struct open_file *file = &rt->open_files[slot];
  if (found.tmp >= 0) {
    struct tmp_file *tmp = &rt->tmp[found.tmp];
    if (flags & O_DIRECTORY) return -PERR_NOTDIR;
    if ((flags & O_TRUNC) && writing) tmp->size = 0;
    tmp->opens++;
    file->kind = FILE_TMP;
    file->node = (uint32_t)found.tmp;
  } else {
    const struct cpio_node *node = &rt->index.nodes[found.node];
    uint32_t type = node->mode & MODE_TYPE_MASK;
    if (type == MODE_SYMLINK) return -PERR_LOOP; /* O_NOFOLLOW on a link */
    if ((flags & O_DIRECTORY) && type != MODE_DIR) return -PERR_NOTDIR;
    if (type == MODE_DIR && writing) return -PERR_ISDIR;
    if (writing && node->special == NODE_PLAIN) return -PERR_ROFS;
    file->kind = FILE_NODE;
    file->node = (uint32_t)found.node;
  }
  file->refs = 1;
  file->flags = (uint32_t)(flags & ~(uint64_t)(O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC));
  file->offset = 0;
  rt->fds[fd] = (int16_t)slot;
  rt->fd_cloexec[fd] = (flags & O_CLOEXEC) != 0;
  return fd;
}

int64_t sys_close(struct program_runtime *rt, int64_t fd) {
  if (!fd_file(rt, fd)) return -PERR_BADF;
  drop_open_file(rt, rt->fds[fd]);
  rt->fds[fd] = -1;
  rt->fd_cloexec[fd] = 0;
  return 0;
}

int64_t sys_dup(struct program_runtime *rt, int64_t fd, int64_t lowest, int cloexec) {
  if (!fd_file(rt, fd)) return -PERR_BADF;
  if (lowest < 0 || lowest >= PROGRAM_MAX_FDS) return -PERR_INVAL;
  int64_t copy = lowest_free_fd(rt, lowest);
  if (copy < 0) return copy;
  rt->fds[copy] = rt->fds[fd];
  rt->open_files[rt->fds[fd]].refs++;
  rt->fd_cloexec[copy] = (uint8_t)cloexec;
  return copy;
}

int64_t sys_dup3(struct program_runtime *rt, int64_t oldfd, int64_t newfd, uint64_t flags, int dup2) {
  if (!fd_file(rt, oldfd)) return -PERR_BADF;
  if (oldfd == newfd) return dup2 ? newfd : -PERR_INVAL;
  if (newfd < 0 || newfd >= PROGRAM_MAX_FDS || (flags & ~(uint64_t)O_CLOEXEC)) return newfd < 0 ? -PERR_BADF : -PERR_INVAL;
  if (rt->fds[newfd] >= 0) sys_close(rt, newfd);
  rt->fds[newfd] = rt->fds[oldfd];
  rt->open_files[rt->fds[oldfd]].refs++;
  rt->fd_cloexec[newfd] = (flags & O_CLOEXEC) != 0;
  return newfd;
}

int64_t sys_fcntl(struct program_runtime *rt, int64_t fd, uint64_t cmd, uint64_t arg) {
  struct open_file *file = fd_file(rt, fd);
  if (!file) return -PERR_BADF;
  switch (cmd) {
    case F_DUPFD: return sys_dup(rt, fd, (int64_t)arg, 0);
    case F_DUPFD_CLOEXEC: return sys_dup(rt, fd, (int64_t)arg, 1);
    case F_GETFD: return rt->fd_cloexec[fd] ? FD_CLOEXEC : 0;
    case F_SETFD: rt->fd_cloexec[fd] = (arg & FD_CLOEXEC) != 0; return 0;
    case F_GETFL: return file->flags;
    case F_SETFL: file->flags = (file->flags & ~(uint32_t)SETFL_MASK) | ((uint32_t)arg & SETFL_MASK); return 0;
    case F_SETLK: case F_SETLKW: return 0; /* one process: every lock is granted */
    default: return -PERR_INVAL;
  }
}

int64_t sys_ioctl(struct program_runtime *rt, int64_t fd, uint64_t request) {
  (void)request; /* no terminals here: TCGETS, TIOCGWINSZ and the rest */
  return fd_file(rt, fd) ? -PERR_NOTTY : -PERR_BADF;
}

int64_t sys_lseek(struct program_runtime *rt, int64_t fd, int64_t offset, uint64_t whence) {
  struct open_file *file = fd_file(rt, fd);
  if (!file) return -PERR_BADF;
  uint64_t size;
  if (file->kind == FILE_TMP) size = rt->tmp[file->node].size;
  else if (file->kind == FILE_NODE) size = rt->index.nodes[file->node].size;
  else return -PERR_SPIPE; /* stdin, stdout and stderr are pipes */
  int64_t base;
  if (whence == 0) base = 0;
  else if (whence == 1) base = (int64_t)file->offset;
  else if (whence == 2) base = (int64_t)size;
  else return -PERR_INVAL;
  int64_t target = base + offset;
  if (target < 0) return -PERR_INVAL;
  file->offset = (uint64_t)target;
  return target;
}

int64_t sys_ftruncate(struct program_runtime *rt, int64_t fd, int64_t length) {
  struct open_file *file = fd_file(rt, fd);
  if (!file) return -PERR_BADF;
  if (length < 0) return -PERR_INVAL;
  if (file->kind != FILE_TMP || (file->flags & O_ACCMODE) == O_RDONLY) return -PERR_INVAL;
  struct tmp_file *tmp = &rt->tmp[file->node];
  int64_t error = tmp_reserve(rt, tmp, (uint64_t)length);
  if (error) return error;
  tmp->size = (uint64_t)length;
  return 0;
}

/* ---- getdents64 ----------------------------------------------------------
 * Positions: 0 ".", 1 "..", then 2 + i for index node i (or tmp slot i). */

#define DT_FIFO 1
#define DT_CHR 2
#define DT_DIR 4
#define DT_REG 8
#define DT_LNK 10

static uint8_t dirent_type(uint32_t mode) {
  switch (mode & MODE_TYPE_MASK) {
    case MODE_DIR: return DT_DIR;
    case MODE_SYMLINK: return DT_LNK;
    case MODE_CHAR_DEVICE: return DT_CHR;
    case MODE_FIFO: return DT_FIFO;
    default: return DT_REG;
  }
}

/* Puts one record at out + used; 0 if it did not fit. */
static uint64_t put_dirent(uint8_t *out, uint64_t room, uint64_t ino, uint64_t next, uint8_t type,
                           const char *name, uint32_t name_len) {
  uint64_t reclen = (19 + name_len + 1 + 7) & ~7ull;
  if (reclen > room) return 0;
  uint16_t reclen16 = (uint16_t)reclen;
  __builtin_memcpy(out, &ino, 8);
  __builtin_memcpy(out + 8, &next, 8);
  __builtin_memcpy(out + 16, &reclen16, 2);
  out[18] = type;
  __builtin_memcpy(out + 19, name, name_len);
  __builtin_memset(out + 19 + name_len, 0, reclen - 19 - name_len);
  return reclen;
}

int64_t sys_getdents64(struct program_runtime *rt, int64_t fd, uint64_t buf, uint64_t len) {
  struct open_file *file = fd_file(rt, fd);
  if (!file) return -PERR_BADF;
  if (file->kind != FILE_NODE) return -PERR_NOTDIR;
  uint32_t dir = file->node;
  const struct cpio_node *dir_node = &rt->index.nodes[dir];
  if ((dir_node->mode & MODE_TYPE_MASK) != MODE_DIR) return -PERR_NOTDIR;
  if (!user_range_ok(rt, buf, len)) return -PERR_FAULT;
  uint8_t *out = (uint8_t *)user_ptr(rt, buf);
  uint64_t used = 0;
  int tmp_dir = dir_node->special == NODE_TMP_DIR;
  uint64_t end = 2 + (tmp_dir ? PROGRAM_MAX_TMP_FILES : rt->index.count);
  for (uint64_t pos = file->offset; pos < end; pos++) {
    uint64_t put = 0, ino;
    if (pos < 2) {
      ino = 16 + (pos == 0 ? dir : dir_node->parent);
      put = put_dirent(out + used, len - used, ino, pos + 1, DT_DIR, "..", (uint32_t)pos + 1);
    } else if (tmp_dir) {
      const struct tmp_file *tmp = &rt->tmp[pos - 2];
      if (!tmp->linked) continue;
      put = put_dirent(out + used, len - used, 100000 + pos - 2, pos + 1, DT_REG, tmp->name, tmp->name_len);
    } else {
      const struct cpio_node *node = &rt->index.nodes[pos - 2];
      if (node->parent != dir || pos - 2 == dir) continue;
      uint32_t start = node->name_len;
      while (start > 0 && node->name[start - 1] != '/') start--;
      put = put_dirent(out + used, len - used, 16 + pos - 2, pos + 1, dirent_type(node->mode),
                       node->name + start, node->name_len - start);
    }
    if (put == 0) {
      if (used == 0) return -PERR_INVAL; /* the buffer cannot hold one record */
      break;
    }
    used += put;
    file->offset = pos + 1;
  }
  if (used == 0) file->offset = end;
  return (int64_t)used;
}

/* poll/ppoll: nothing ever blocks, so the timeout is ignored. Polling stdin
 * for input is a read as far as the ready point is concerned. */
int64_t sys_poll(struct program_runtime *rt, uint64_t fds, uint64_t count) {
  if (count > POLL_MAX) return -PERR_INVAL;
  if (!user_range_ok(rt, fds, count * 8)) return -PERR_FAULT;
  uint8_t *entries = (uint8_t *)user_ptr(rt, fds);
  int64_t ready = 0;
  for (uint64_t i = 0; i < count; i++) {
    int32_t fd;
    int16_t events, revents = 0;
    __builtin_memcpy(&fd, entries + 8 * i, 4);
    __builtin_memcpy(&events, entries + 8 * i + 4, 2);
    struct open_file *file = fd < 0 ? 0 : fd_file(rt, fd);
    if (fd < 0) {
      revents = 0;
    } else if (!file) {
      revents = POLLNVAL;
    } else if (file->kind == FILE_STDIN) {
      if ((events & (POLLIN | POLLRDNORM)) && !rt->ready) program_ready(rt);
      revents = (int16_t)(events & (POLLIN | POLLRDNORM));
      if (rt->ready && rt->stdin_pos == rt->stdin_len) revents |= POLLHUP;
    } else if (file->kind == FILE_STDOUT || file->kind == FILE_STDERR) {
      revents = (int16_t)(events & (POLLOUT | POLLWRNORM));
    } else {
      revents = (int16_t)(events & (POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM));
    }
    __builtin_memcpy(entries + 8 * i + 6, &revents, 2);
    if (revents) ready++;
  }
  return ready;
}
