/*
 * cfs_fio_files.c - the fio engine's file hooks: sizes before the job runs,
 * open/close/unlink, and fio's "laying out" of files that reads need.
 *
 * fio sizes files in its main process before it forks the jobs (the default
 * create_serialize=1). A libcfs context has threads and sockets that must not
 * be inherited by those forks, so there the work runs in a short-lived child
 * process with its own context; in a job (which has its context) it runs
 * directly.
 */
#include "cfs_fio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

enum file_op { OP_STAT, OP_MKDIRS_STAT, OP_UNLINK };

/* Creates the directories above CFS path `path` (mkdir -p of its parent). */
static int mkdir_parents(cfs_ctx* ctx, const char* path) {
  char dir[PATH_MAX];
  struct cfs_stat st;
  char* slash;
  if (strlen(path) >= sizeof dir) return -ENAMETOOLONG;
  strcpy(dir, path);
  slash = strrchr(dir, '/');
  if (!slash || slash == dir) return 0;
  *slash = '\0';
  if (cfs_stat(ctx, dir, &st) == 0) return S_ISDIR(st.mode) ? 0 : -ENOTDIR;
  for (char* p = dir + 1;; p++) {
    if (*p == '/' || *p == '\0') {
      char c = *p;
      *p = '\0';
      int rc = cfs_mkdir(ctx, dir, 0755);
      *p = c;
      if (rc < 0 && rc != -EEXIST) return rc;
      if (c == '\0') return 0;
    }
  }
}

/* One file's op: the size (stat ops) or 0, or a negative error. */
static int64_t do_op(cfs_ctx* ctx, enum file_op op, const char* path) {
  struct cfs_stat st;
  int rc;
  if (op == OP_UNLINK) {
    rc = cfs_unlink(ctx, path);
    return rc == -ENOENT ? 0 : rc;
  }
  if (op == OP_MKDIRS_STAT && (rc = mkdir_parents(ctx, path)) < 0) return rc;
  rc = cfs_stat(ctx, path, &st);
  if (rc < 0) return rc;
  if (S_ISDIR(st.mode)) return -EISDIR;
  return (int64_t)st.size;
}

static int full_write(int fd, const void* p, size_t n) {
  const char* c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* Runs op on paths[0..n) in a child process with its own context. res[i]
 * gets each result; returns 0, or the connection error. */
static int in_child(struct thread_data* td, enum file_op op, char (*paths)[PATH_MAX], int n,
                    int64_t* res) {
  struct cfs_fio_options* o = td->eo;
  int p[2];
  pid_t pid;
  if (pipe2(p, O_CLOEXEC) < 0) return -errno;
  pid = fork();
  if (pid < 0) {
    int e = errno;
    close(p[0]);
    close(p[1]);
    return -e;
  }
  if (pid == 0) {
    cfs_ctx* ctx = NULL;
    int64_t rc = cfs_mount(cfs_fio_target(o), o->cfs_options, &ctx);
    close(p[0]);
    if (full_write(p[1], &rc, sizeof rc) < 0 || rc < 0) _exit(1);
    for (int i = 0; i < n; i++) {
      int64_t r = do_op(ctx, op, paths[i]);
      if (full_write(p[1], &r, sizeof r) < 0) _exit(1);
    }
    _exit(cfs_unmount(ctx) < 0);
  }
  close(p[1]);
  int64_t mount_rc = -EPIPE;
  size_t want = sizeof mount_rc, got = 0;
  char* dst = (char*)&mount_rc;
  int idx = -1; /* -1: reading mount_rc, then res[idx] */
  for (;;) {
    ssize_t r = read(p[0], dst + got, want - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
    if (got < want) continue;
    if (idx == -1 && mount_rc < 0) break;
    if (++idx == n) break;
    dst = (char*)&res[idx];
    got = 0;
  }
  close(p[0]);
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (mount_rc < 0) return (int)mount_rc;
  if (idx < n) {
    log_err("cfs: the helper process sizing files exited early (status %d)\n", status);
    return -EIO;
  }
  return 0;
}

/* Runs op on files [0, n) of the job: with the job's context when it has one,
 * else in a child. Fills res; returns 0 or a logged error. */
static int run_op(struct thread_data* td, enum file_op op, struct fio_file** files, int n,
                  int64_t* res) {
  struct cfs_fio_data* d = td->io_ops_data;
  struct cfs_fio_options* o = td->eo;
  struct cfs_fio_names own;
  const struct cfs_fio_names* names = d ? &d->names : &own;
  char err[PATH_MAX + 128];
  int rc;

  if (!d) {
    rc = cfs_fio_names_init(&own, o->mount && o->mount[0] ? o->mount : NULL, err, sizeof err);
    if (rc < 0) {
      log_err("cfs: %s\n", rc == -ENOENT ? err : cfs_strerror(rc));
      td_verror(td, -rc, "cfs_mount");
      return rc;
    }
  }
  char (*paths)[PATH_MAX] = calloc((size_t)n, PATH_MAX);
  if (!paths) return -ENOMEM;
  for (int i = 0; i < n; i++) {
    rc = cfs_fio_names_map(names, files[i]->file_name, paths[i], PATH_MAX);
    if (rc < 0) {
      cfs_fio_error(td, rc, "file name", files[i]->file_name);
      free(paths);
      return rc;
    }
  }
  if (d) {
    for (int i = 0; i < n; i++) res[i] = do_op(d->ctx, op, paths[i]);
    rc = 0;
  } else {
    rc = in_child(td, op, paths, n, res);
    if (rc < 0) {
      log_err("cfs: cannot connect to %s: %s\n",
              cfs_fio_target(o) ? cfs_fio_target(o) : "$CFS_CLUSTER", cfs_strerror(rc));
      td_verror(td, -rc >= CFS_ERRNO_BASE ? EIO : -rc, "cfs_mount");
    }
  }
  for (int i = 0; rc == 0 && i < n; i++) {
    if (res[i] < 0 && res[i] != -ENOENT) { /* a missing file has size 0 */
      cfs_fio_error(td, (int)res[i], op == OP_UNLINK ? "unlink" : "stat", paths[i]);
      rc = (int)res[i];
    }
  }
  free(paths);
  return rc;
}

/* fio sizes the job's files. A file the job may grow (writes, or a size=/
 * filesize= to lay out for reads) gets no upper bound (-1); otherwise the
 * range is the existing file, as fio does for regular files. */
int cfs_fio_setup(struct thread_data* td) {
  struct fio_file* f;
  unsigned i;
  int n = (int)td->files_index, rc;
  if (cfs_fio_check(td)) return EINVAL;
  if (n == 0) return 0;
  struct fio_file** files = calloc((size_t)n, sizeof *files);
  int64_t* res = calloc((size_t)n, sizeof *res);
  if (!files || !res) {
    free(files);
    free(res);
    return ENOMEM;
  }
  for_each_file(td, f, i) files[i] = f;
  rc = run_op(td, td_write(td) ? OP_MKDIRS_STAT : OP_STAT, files, n, res);
  if (rc == 0) {
    int sized = td->o.size || td->o.file_size_low;
    for_each_file(td, f, i) {
      uint64_t size = res[i] > 0 ? (uint64_t)res[i] : 0;
      f->real_file_size = size > 0 && !sized ? size : -1ULL;
      fio_file_set_size_known(f);
    }
  }
  free(files);
  free(res);
  return rc < 0 ? -rc : 0;
}

int cfs_fio_get_file_size(struct thread_data* td, struct fio_file* f) {
  int64_t res;
  int rc = run_op(td, OP_STAT, &f, 1, &res);
  if (rc < 0) return -rc;
  f->real_file_size = res > 0 ? (uint64_t)res : 0;
  fio_file_set_size_known(f);
  return 0;
}

static const cfs_layout* hint_of(struct cfs_fio_data* d) {
  return d->hint.unit || d->hint.k || d->hint.m ? &d->hint : NULL;
}

/* Writes the part of f a reading job needs that is not there yet, with data
 * from fio's buffer fill (buffer_pattern, compression, ...), like fio's own
 * layout of regular files. */
static int layout_file(struct thread_data* td, struct fio_file* f, const char* path) {
  struct cfs_fio_data* d = td->io_ops_data;
  uint64_t need = f->file_offset + f->io_size;
  struct cfs_stat st;
  int rc, fh;

  f->engine_pos |= CFS_FIO_LAID_OUT;
  if (!td_read(td) || f->io_size == 0 || f->io_size == -1ULL) return 0;
  rc = cfs_stat(d->ctx, path, &st);
  if (rc < 0 && rc != -ENOENT) {
    cfs_fio_error(td, rc, "stat", path);
    return 1;
  }
  uint64_t have = rc == 0 ? st.size : 0;
  if (have >= need) return 0;
  if (rc == -ENOENT && !td->o.allow_create) {
    cfs_fio_error(td, rc, "open (allow_file_create=0)", path);
    return 1;
  }
  log_info("%s: laying out %s through libcfs (%llu MiB)\n", td->o.name, path,
           (unsigned long long)((need - have) >> 20));
  if ((rc = mkdir_parents(d->ctx, path)) < 0) {
    cfs_fio_error(td, rc, "mkdir", path);
    return 1;
  }
  fh = cfs_open(d->ctx, path, O_WRONLY | O_CREAT, 0644, hint_of(d));
  if (fh < 0) {
    cfs_fio_error(td, fh, "open", path);
    return 1;
  }
  size_t chunk = 4u << 20;
  if (need - have < chunk) chunk = (size_t)(need - have);
  char* buf = malloc(chunk);
  if (!buf) {
    cfs_close(d->ctx, fh);
    return 1;
  }
  fill_io_buffer(td, buf, chunk, chunk);
  for (uint64_t off = have; off < need && rc >= 0;) {
    size_t n = need - off < chunk ? (size_t)(need - off) : chunk;
    int64_t w = cfs_pwrite(d->ctx, fh, buf, n, off);
    if (w < 0) rc = (int)w;
    off += n;
  }
  free(buf);
  int crc = cfs_close(d->ctx, fh);
  if (rc >= 0) rc = crc;
  if (rc < 0) {
    cfs_fio_error(td, rc, "layout write", path);
    return 1;
  }
  return 0;
}

int cfs_fio_layout_files(struct thread_data* td) {
  struct cfs_fio_data* d = td->io_ops_data;
  struct fio_file* f;
  unsigned i;
  char path[PATH_MAX];
  for_each_file(td, f, i) {
    if (f->engine_pos & CFS_FIO_LAID_OUT) continue;
    int rc = cfs_fio_names_map(&d->names, f->file_name, path, sizeof path);
    if (rc < 0) {
      cfs_fio_error(td, rc, "file name", f->file_name);
      return 1;
    }
    if (layout_file(td, f, path)) return 1;
  }
  return 0;
}

int cfs_fio_open_file(struct thread_data* td, struct fio_file* f) {
  struct cfs_fio_data* d = td->io_ops_data;
  char path[PATH_MAX];
  int flags, fh, rc;

  rc = cfs_fio_names_map(&d->names, f->file_name, path, sizeof path);
  if (rc < 0) {
    cfs_fio_error(td, rc, "file name", f->file_name);
    return 1;
  }
  if (!(f->engine_pos & CFS_FIO_LAID_OUT) && layout_file(td, f, path)) return 1;
  if (td_write(td)) {
    flags = O_RDWR | (td->o.allow_create ? O_CREAT : 0);
  } else {
    flags = O_RDONLY;
  }
  fh = cfs_open(d->ctx, path, flags, 0644, hint_of(d));
  if (fh == -ENOENT && (flags & O_CREAT)) {
    if ((rc = mkdir_parents(d->ctx, path)) < 0) {
      cfs_fio_error(td, rc, "mkdir", path);
      return 1;
    }
    fh = cfs_open(d->ctx, path, flags, 0644, hint_of(d));
  }
  if (fh < 0) {
    cfs_fio_error(td, fh, "open", path);
    return 1;
  }
  f->fd = fh;
  return 0;
}

int cfs_fio_close_file(struct thread_data* td, struct fio_file* f) {
  struct cfs_fio_data* d = td->io_ops_data;
  int rc = 0;
  if (f->fd >= 0 && d) rc = cfs_close(d->ctx, f->fd);
  f->fd = -1;
  if (rc < 0) {
    cfs_fio_error(td, rc, "close", f->file_name);
    return -rc >= CFS_ERRNO_BASE ? EIO : -rc;
  }
  return 0;
}

int cfs_fio_unlink_file(struct thread_data* td, struct fio_file* f) {
  int64_t res;
  int rc = run_op(td, OP_UNLINK, &f, 1, &res);
  return rc < 0 ? (-rc >= CFS_ERRNO_BASE ? EIO : -rc) : 0;
}

/* libcfs keeps no data cache across opens (close-to-open; read-ahead lives
 * in the handle), so there is nothing to drop. */
int cfs_fio_invalidate(struct thread_data* td, struct fio_file* f) {
  return 0;
}
