/*
 * cfs_fio.h - shared state of the fio engine's files (cfs_fio.c: the engine
 * and its I/O path; cfs_fio_files.c: file setup, open, close, layout).
 * Compiled against the headers of the fio that loads it (fio.h), configured
 * as Debian configured the installed fio (scripts/fetch-fio-source.sh).
 */
#ifndef CFS_FIO_H
#define CFS_FIO_H

#include <cfs/cfs.h>

#include "cfs_fio_names.h"
#include "fio.h"

/* Engine options (fio job file keys). The leading pad keeps every option's
 * offset non-zero, which fio requires. */
struct cfs_fio_options {
  void* pad;
  char* mount;         /* cfs_mount=DIR */
  char* cluster;       /* cfs_cluster=HOST:PORT */
  char* cfs_options;   /* cfs_options=key=value,... (libcfs options of cfs_mount) */
  char* stripe;        /* cfs_stripe=K+M for files the job creates */
  unsigned long long unit; /* cfs_unit=SIZE stripe unit for created files */
  unsigned int batch;  /* cfs_batch=N requests started together (0: min(16, iodepth)) */
};

/* Per job (thread_data) state, in td->io_ops_data. */
struct cfs_fio_data {
  cfs_ctx* ctx;
  cfs_ioq* q;
  int buf; /* registration of td->orig_buffer, -1 before post_init */
  struct cfs_fio_names names;
  cfs_layout hint;
  unsigned depth;
  /* Queued by ->queue(), submitted by ->commit(). */
  cfs_iocb* cbs;
  struct io_u** cb_io_us;
  unsigned npending;
  unsigned inflight;
  /* Completed outside ->getevents() (refused at submission, or drained
   * before an fsync); handed back first by the next ->getevents(). */
  struct io_u** ready;
  unsigned nready;
  /* Completions of the last ->getevents(), read by ->event(). */
  cfs_ioevent* evs;
  struct io_u** done;
};

/* f->engine_pos bits. */
#define CFS_FIO_LAID_OUT 1ULL

/* Checks that this fio is the one the engine was compiled against: same
 * version, and the fields the engine reads sit where it expects them. Called
 * by the first hook fio runs (setup, in fio's main process) and by init.
 * Returns 0 or -1 (message logged). */
int cfs_fio_check(struct thread_data* td);

/* The layout hint from cfs_stripe/cfs_unit; 0 or -EINVAL (message logged). */
int cfs_fio_parse_hint(const struct cfs_fio_options* o, cfs_layout* hint);

/* Where the job's cluster is: cfs_mount's DIR, cfs_cluster's address, or NULL
 * (cfs_mount(NULL) then reads CFS_CLUSTER). */
const char* cfs_fio_target(const struct cfs_fio_options* o);

/* Connects as the job's options say; logs and returns a negative error. */
int cfs_fio_connect(struct thread_data* td, cfs_ctx** out);

/* Logs "cfs: what path: <cfs_strerror>" and sets td's error (an errno value;
 * CFS_E* codes become EIO). */
void cfs_fio_error(struct thread_data* td, int rc, const char* what, const char* path);

/* File hooks (cfs_fio_files.c). */
int cfs_fio_setup(struct thread_data* td);
int cfs_fio_get_file_size(struct thread_data* td, struct fio_file* f);
int cfs_fio_open_file(struct thread_data* td, struct fio_file* f);
int cfs_fio_close_file(struct thread_data* td, struct fio_file* f);
int cfs_fio_unlink_file(struct thread_data* td, struct fio_file* f);
int cfs_fio_invalidate(struct thread_data* td, struct fio_file* f);
/* Writes out the part of every file the job will read that does not exist
 * yet (fio's "laying out" step), once sizes are known. */
int cfs_fio_layout_files(struct thread_data* td);

#endif
