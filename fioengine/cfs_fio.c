/*
 * cfs_fio.c - a fio ioengine that does its I/O with libcfs's asynchronous API
 * (registered buffers and I/O queues, include/cfs/cfs.h), not through the
 * FUSE mount.
 *
 *   ioengine=external:/path/lib/libcfs_fio.so
 *   cfs_mount=DIR | cfs_cluster=HOST:PORT   (docs/fio-engine.md)
 *
 * Each job has its own libcfs context and one I/O queue as deep as fio's
 * iodepth. fio's whole I/O buffer (td->orig_buffer, which holds every io_u's
 * buffer) is registered once, so requests move data straight between it and
 * the S-workers. ->queue() collects requests, ->commit() submits them as one
 * batch, ->getevents() reaps completions.
 */
#include "cfs_fio.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optgroup.h"

#ifndef FIO_VERSION
#error "FIO_VERSION (the fio source's version, e.g. \"fio-3.33\") must be defined by the build"
#endif

/* Exported: fio looks the engine up by this name (dlsym "ioengine"). */
extern struct ioengine_ops ioengine __attribute__((visibility("default")));

static struct fio_option options[] = {
    {
        .name = "cfs_mount",
        .lname = "CFS mount directory",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct cfs_fio_options, mount),
        .help = "A directory on a cfs-fuse mount: the cluster is the mount's; names under "
                "the mount map to CFS paths",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "cfs_cluster",
        .lname = "CFS cluster address",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct cfs_fio_options, cluster),
        .help = "HOST:PORT of the M-worker (several separated by commas)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "cfs_options",
        .lname = "libcfs options",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct cfs_fio_options, cfs_options),
        .help = "libcfs options for cfs_mount(), key=value,... (e.g. readahead=4)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "cfs_stripe",
        .lname = "CFS stripe K+M",
        .type = FIO_OPT_STR_STORE,
        .off1 = offsetof(struct cfs_fio_options, stripe),
        .help = "Layout K+M of files the job creates (default: the directory's)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "cfs_unit",
        .lname = "CFS stripe unit",
        .type = FIO_OPT_STR_VAL,
        .off1 = offsetof(struct cfs_fio_options, unit),
        .help = "Stripe unit of files the job creates (power of two, 64k..64m)",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = "cfs_batch",
        .lname = "CFS I/O queue batch",
        .type = FIO_OPT_INT,
        .off1 = offsetof(struct cfs_fio_options, batch),
        .help = "Requests the I/O queue starts together (default min(16, iodepth))",
        .category = FIO_OPT_C_ENGINE,
        .group = FIO_OPT_G_INVALID,
    },
    {
        .name = NULL,
    },
};

void cfs_fio_error(struct thread_data* td, int rc, const char* what, const char* path) {
  int e = rc < 0 ? -rc : rc;
  log_err("cfs: %s%s%s: %s\n", what, path ? " " : "", path ? path : "", cfs_strerror(-e));
  td_verror(td, e >= CFS_ERRNO_BASE ? EIO : e, what);
}

const char* cfs_fio_target(const struct cfs_fio_options* o) {
  if (o->mount && o->mount[0]) return o->mount;
  if (o->cluster && o->cluster[0]) return o->cluster;
  return NULL;
}

int cfs_fio_parse_hint(const struct cfs_fio_options* o, cfs_layout* hint) {
  memset(hint, 0, sizeof *hint);
  if (o->stripe && o->stripe[0]) {
    unsigned k, m;
    char extra;
    if (sscanf(o->stripe, "%u+%u%c", &k, &m, &extra) != 2 || k == 0) {
      log_err("cfs: cfs_stripe=%s: want K+M, e.g. 4+2\n", o->stripe);
      return -EINVAL;
    }
    hint->k = k;
    hint->m = m;
  }
  if (o->unit) {
    if (o->unit > (1ULL << 26) || (o->unit & (o->unit - 1)) != 0 || o->unit < (1ULL << 16)) {
      log_err("cfs: cfs_unit=%llu: want a power of two from 64k to 64m\n", o->unit);
      return -EINVAL;
    }
    hint->unit = (uint32_t)o->unit;
  }
  return 0;
}

int cfs_fio_connect(struct thread_data* td, cfs_ctx** out) {
  struct cfs_fio_options* o = td->eo;
  const char* target = cfs_fio_target(o);
  int rc = cfs_mount(target, o->cfs_options, out);
  if (rc < 0) {
    log_err("cfs: cannot connect to %s%s: %s\n", target ? target : "$CFS_CLUSTER",
            o->cfs_options ? " (options " : "", cfs_strerror(rc));
    if (o->cfs_options) log_err("cfs: (cfs_options=%s)\n", o->cfs_options);
    td_verror(td, -rc >= CFS_ERRNO_BASE ? EIO : -rc, "cfs_mount");
  }
  return rc;
}

int cfs_fio_check(struct thread_data* td) {
  if (strcmp(fio_version_string, FIO_VERSION) != 0) {
    log_err("cfs: libcfs_fio.so was built against %s but is loaded by %s; rebuild it against "
            "this fio's source (cmake -DCFS_FIO_ENGINE=ON, docs/fio-engine.md)\n",
            FIO_VERSION, fio_version_string);
    return -1;
  }
  if (td->io_ops != &ioengine || !td->eo) {
    log_err("cfs: struct thread_data of this fio differs from the headers libcfs_fio.so was "
            "built with (configure flags?); rebuild it against this fio's Debian source\n");
    return -1;
  }
  return 0;
}

static void free_data(struct cfs_fio_data* d) {
  free(d->cbs);
  free(d->cb_io_us);
  free(d->ready);
  free(d->evs);
  free(d->done);
  free(d);
}

static int cfs_fio_init(struct thread_data* td) {
  struct cfs_fio_options* o;
  struct cfs_fio_data* d;
  char err[PATH_MAX + 128];
  int rc;

  if (cfs_fio_check(td)) return 1;
  o = td->eo;
  if (o->mount && o->mount[0] && o->cluster && o->cluster[0]) {
    log_err("cfs: give cfs_mount= or cfs_cluster=, not both\n");
    return 1;
  }
  if (!cfs_fio_target(o) && !getenv("CFS_CLUSTER")) {
    log_err("cfs: set cfs_mount=DIR or cfs_cluster=HOST:PORT (or CFS_CLUSTER)\n");
    return 1;
  }
  if (td_trim(td)) {
    log_err("cfs: trim is not supported\n");
    return 1;
  }
  if (td->o.sync_io) {
    log_err("cfs: sync=1 is not supported; fsync=1 makes every write durable before the next\n");
    return 1;
  }
  if (td->o.iodepth > 4096) {
    log_err("cfs: iodepth=%u: at most 4096\n", td->o.iodepth);
    return 1;
  }

  d = calloc(1, sizeof *d);
  if (!d) return 1;
  d->buf = -1;
  d->depth = td->o.iodepth ? td->o.iodepth : 1;
  d->cbs = calloc(d->depth, sizeof *d->cbs);
  d->cb_io_us = calloc(d->depth, sizeof *d->cb_io_us);
  d->ready = calloc(d->depth, sizeof *d->ready);
  d->evs = calloc(d->depth, sizeof *d->evs);
  d->done = calloc(d->depth, sizeof *d->done);
  if (!d->cbs || !d->cb_io_us || !d->ready || !d->evs || !d->done) goto fail;
  if (cfs_fio_parse_hint(o, &d->hint) < 0) goto fail;
  rc = cfs_fio_names_init(&d->names, o->mount && o->mount[0] ? o->mount : NULL, err, sizeof err);
  if (rc < 0) {
    log_err("cfs: %s\n", rc == -ENOENT ? err : cfs_strerror(rc));
    goto fail;
  }
  if (cfs_fio_connect(td, &d->ctx) < 0) goto fail;

  cfs_ioq_opts qo = {d->depth, o->batch ? o->batch : (d->depth < 16 ? d->depth : 16)};
  if (qo.batch > qo.depth) qo.batch = qo.depth;
  rc = cfs_ioq_create(d->ctx, &qo, &d->q);
  if (rc < 0) {
    cfs_fio_error(td, rc, "cfs_ioq_create", NULL);
    goto fail;
  }
  td->io_ops_data = d;
  return 0;

fail:
  if (d->ctx) cfs_unmount(d->ctx);
  free_data(d);
  return 1;
}

/* After fio allocated its I/O buffers: register them, check that every io_u
 * buffer lies inside (it does unless the struct layouts disagree), and lay
 * out the files reads need when sizes are already known. */
static int cfs_fio_post_init(struct thread_data* td) {
  struct cfs_fio_data* d = td->io_ops_data;
  struct io_u* io_u;
  unsigned i;

  if (td->orig_buffer && td->orig_buffer_size) {
    int rc = cfs_buf_register(d->ctx, td->orig_buffer, td->orig_buffer_size);
    if (rc < 0) {
      cfs_fio_error(td, rc, "cfs_buf_register", NULL);
      return 1;
    }
    d->buf = rc;
    char* lo = td->orig_buffer;
    char* hi = lo + td->orig_buffer_size;
    io_u_qiter(&td->io_u_all, io_u, i) {
      char* b = io_u->buf;
      if (b < lo || b + td_max_bs(td) > hi) {
        log_err("cfs: io_u buffer %p outside fio's I/O buffer [%p, %p): this fio's structures "
                "differ from the headers libcfs_fio.so was built with\n",
                (void*)b, (void*)lo, (void*)hi);
        return 1;
      }
    }
  }
  /* With create_serialize (the default) fio sized the files before the job
   * started; otherwise open_file lays each one out. */
  if (td->o.create_serialize && cfs_fio_layout_files(td)) return 1;
  return 0;
}

static void cfs_fio_cleanup(struct thread_data* td) {
  struct cfs_fio_data* d = td->io_ops_data;
  if (!d) return;
  if (d->q) cfs_ioq_destroy(d->q);
  if (d->buf >= 0) cfs_buf_unregister(d->ctx, d->buf);
  if (d->ctx) {
    int rc = cfs_unmount(d->ctx);
    if (rc < 0) log_err("cfs: cfs_unmount: %s\n", cfs_strerror(rc));
  }
  free_data(d);
  td->io_ops_data = NULL;
}

/* Stamps submission time the way fio's async engines do (slat/clat). */
static void mark_issued(struct thread_data* td, struct io_u** io_us, unsigned n) {
  struct timespec now;
  unsigned i;
  if (!fio_fill_issue_time(td)) return;
  fio_gettime(&now, NULL);
  for (i = 0; i < n; i++) {
    memcpy(&io_us[i]->issue_time, &now, sizeof now);
    io_u_queued(td, io_us[i]);
  }
  if (td->o.read_iolog_file) memcpy(&td->last_issue, &now, sizeof now);
}

static void drop_pending(struct cfs_fio_data* d, unsigned n) {
  d->npending -= n;
  memmove(d->cbs, d->cbs + n, d->npending * sizeof *d->cbs);
  memmove(d->cb_io_us, d->cb_io_us + n, d->npending * sizeof *d->cb_io_us);
}

static int to_errno(struct thread_data* td, struct io_u* io_u, int64_t res) {
  int e = (int)-res;
  if (e >= CFS_ERRNO_BASE) {
    log_err("cfs: %s at %llu in %s: %s\n", io_ddir_name(io_u->ddir), io_u->offset,
            io_u->file ? io_u->file->file_name : "?", cfs_strerror((int)res));
    e = EIO;
  }
  return e;
}

/* Submits what ->queue() collected. Stops without error when the queue is
 * full (the caller reaps); a request the queue refuses completes with its
 * error through the next ->getevents(). */
static void submit_pending(struct thread_data* td) {
  struct cfs_fio_data* d = td->io_ops_data;
  while (d->npending) {
    int n = cfs_ioq_submit(d->q, d->cbs, (int)d->npending);
    if (n == -EAGAIN) return;
    if (n <= 0) {
      struct io_u* io_u = d->cb_io_us[0];
      io_u->error = n < 0 ? to_errno(td, io_u, n) : EIO;
      d->ready[d->nready++] = io_u;
      drop_pending(d, 1);
      continue;
    }
    mark_issued(td, d->cb_io_us, (unsigned)n);
    io_u_mark_submit(td, (unsigned)n);
    d->inflight += (unsigned)n;
    drop_pending(d, (unsigned)n);
  }
}

static void complete(struct thread_data* td, struct io_u* io_u, int64_t res) {
  if (res < 0) {
    io_u->error = to_errno(td, io_u, res);
  } else if (ddir_rw(io_u->ddir) && (unsigned long long)res < io_u->xfer_buflen) {
    io_u->resid = io_u->xfer_buflen - (unsigned long long)res;
  }
}

/* Waits for every request in flight; their completions wait in d->ready
 * (the list ->getevents() hands back first) with their results applied. */
static int drain(struct thread_data* td) {
  struct cfs_fio_data* d = td->io_ops_data;
  submit_pending(td);
  while (d->inflight) {
    int n = cfs_ioq_reap(d->q, d->evs, 1, (int)d->inflight, -1);
    if (n < 0) return n;
    for (int i = 0; i < n; i++) {
      struct io_u* io_u = (struct io_u*)(uintptr_t)d->evs[i].user_data;
      complete(td, io_u, d->evs[i].res);
      d->ready[d->nready++] = io_u;
    }
    d->inflight -= (unsigned)n;
    submit_pending(td);
  }
  return 0;
}

static enum fio_q_status cfs_fio_queue(struct thread_data* td, struct io_u* io_u) {
  struct cfs_fio_data* d = td->io_ops_data;
  cfs_iocb* cb;

  fio_ro_check(td, io_u);
  if (d->npending + d->inflight + d->nready >= d->depth) return FIO_Q_BUSY;
  if (ddir_sync(io_u->ddir)) {
    /* CFS_IO_FSYNC covers the writes completed before it is submitted:
     * finish everything queued so far so fsync=N means what it says. */
    int rc = drain(td);
    if (rc < 0) {
      io_u->error = -rc >= CFS_ERRNO_BASE ? EIO : -rc;
      return FIO_Q_COMPLETED;
    }
  } else if (io_u->ddir != DDIR_READ && io_u->ddir != DDIR_WRITE) {
    io_u->error = EINVAL;
    return FIO_Q_COMPLETED;
  }
  cb = &d->cbs[d->npending];
  memset(cb, 0, sizeof *cb);
  cb->fh = io_u->file->fd;
  cb->user_data = (uint64_t)(uintptr_t)io_u;
  if (ddir_sync(io_u->ddir)) {
    cb->op = CFS_IO_FSYNC;
  } else {
    cb->op = io_u->ddir == DDIR_READ ? CFS_IO_READ : CFS_IO_WRITE;
    cb->buf = d->buf;
    cb->addr = io_u->xfer_buf;
    cb->len = io_u->xfer_buflen;
    cb->off = io_u->offset;
  }
  d->cb_io_us[d->npending++] = io_u;
  return FIO_Q_QUEUED;
}

static int cfs_fio_commit(struct thread_data* td) {
  submit_pending(td);
  return 0;
}

static int cfs_fio_getevents(struct thread_data* td, unsigned int min, unsigned int max,
                             const struct timespec* t) {
  struct cfs_fio_data* d = td->io_ops_data;
  int timeout_ms = -1;
  unsigned got = 0;

  if (t) timeout_ms = (int)(t->tv_sec * 1000 + (t->tv_nsec + 999999) / 1000000);
  while (d->nready && got < max) {
    d->done[got++] = d->ready[0];
    d->nready--;
    memmove(d->ready, d->ready + 1, d->nready * sizeof *d->ready);
  }
  for (;;) {
    submit_pending(td);
    unsigned room = max - got;
    if (!room || !d->inflight) break;
    unsigned need = got < min ? min - got : 0;
    if (need > d->inflight) need = d->inflight;
    if (room > d->inflight) room = d->inflight;
    int n = cfs_ioq_reap(d->q, d->evs, (int)need, (int)room, need ? timeout_ms : 0);
    if (n < 0) {
      log_err("cfs: cfs_ioq_reap: %s\n", cfs_strerror(n));
      return n;
    }
    for (int i = 0; i < n; i++) {
      struct io_u* io_u = (struct io_u*)(uintptr_t)d->evs[i].user_data;
      complete(td, io_u, d->evs[i].res);
      d->done[got++] = io_u;
    }
    d->inflight -= (unsigned)n;
    if (n == 0 || got >= min) break;
  }
  return (int)got;
}

static struct io_u* cfs_fio_event(struct thread_data* td, int event) {
  struct cfs_fio_data* d = td->io_ops_data;
  return d->done[event];
}

struct ioengine_ops ioengine = {
    .name = "cfs",
    .version = FIO_IOOPS_VERSION,
    .flags = FIO_DISKLESSIO | FIO_NODISKUTIL | FIO_ASYNCIO_SETS_ISSUE_TIME,
    .setup = cfs_fio_setup,
    .init = cfs_fio_init,
    .post_init = cfs_fio_post_init,
    .queue = cfs_fio_queue,
    .commit = cfs_fio_commit,
    .getevents = cfs_fio_getevents,
    .event = cfs_fio_event,
    .cleanup = cfs_fio_cleanup,
    .open_file = cfs_fio_open_file,
    .close_file = cfs_fio_close_file,
    .invalidate = cfs_fio_invalidate,
    .unlink_file = cfs_fio_unlink_file,
    .get_file_size = cfs_fio_get_file_size,
    .options = options,
    .option_struct_size = sizeof(struct cfs_fio_options),
};
