/*
 * cfs.h - the public C API of libcfs, the CFS client library.
 *
 * Conventions
 *  - Every call returns 0 (or a non-negative count/handle) on success and a
 *    negative POSIX errno value on failure (-ENOENT, -EIO, ...). cfs_strerror()
 *    turns it into text.
 *  - Paths are absolute within the CFS namespace ("/a/b"), independent of where
 *    the file system is mounted with cfs-fuse.
 *  - A context (cfs_ctx) is safe to use from many threads at once. File handles
 *    are small integers private to their context.
 *  - Consistency is close-to-open: data written through a handle is visible to
 *    other clients (other contexts, FUSE mounts) after cfs_fsync or cfs_close
 *    returns, and an open sees everything closed before it.
 *  - Durability: after cfs_fsync returns, the data survives a crash of any CFS
 *    process or machine; after cfs_close returns, it survives a crash of any
 *    CFS process.
 *
 * Link with `pkg-config --libs cfs` or CMake `find_package(cfs)` + `cfs::cfs`.
 */
#ifndef CFS_CFS_H
#define CFS_CFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CFS_VERSION_MAJOR 0
#define CFS_VERSION_MINOR 2
#define CFS_VERSION_PATCH 0

/* Library version as "MAJOR.MINOR.PATCH". */
const char* cfs_version(void);

/* Text for a (negative or positive) error value returned by a cfs_ call:
 * an errno value or one of the CFS_E* codes below. */
const char* cfs_strerror(int err);

/* Errors of CFS's own, returned negated like errno values. They are above
 * every errno value (CFS_ERRNO_BASE), so `rc == -CFS_ENOTREG` is unambiguous.
 * The errno values libcfs returns, and what they mean here:
 *   EBADF     the handle is not open in this context (or wrong access mode)
 *   EINVAL    a bad argument (NULL pointer, bad flags, bad name, bad option)
 *   EFBIG     an offset or length past 2^63 bytes
 *   ENOENT    no such file, directory, checkpoint set or job
 *   EEXIST    the file or directory exists (O_EXCL, mkdir)
 *   EAGAIN    an I/O queue is full (depth requests in flight); reap first
 *   EBUSY     the object is in use (a registered buffer with I/O in flight)
 *   EHOSTUNREACH, ETIMEDOUT, ECONNRESET
 *             the cluster (M-worker or S-workers) cannot be reached; data not
 *             yet fsynced or closed may be lost, committed checkpoints never
 *   EIO       the data could not be read or written (more S-workers lost than
 *             the layout's parity covers, a checksum that fails everywhere)
 *   ENOSPC    the targets are full */
#define CFS_ERRNO_BASE 4096
#define CFS_ENOTREG (CFS_ERRNO_BASE + 1)    /* the buffer is not inside a registered buffer */
#define CFS_ECOMMITTED (CFS_ERRNO_BASE + 2) /* the checkpoint set is already committed */
#define CFS_ENOTMOUNT (CFS_ERRNO_BASE + 3)  /* the path given to cfs_mount is not on a cfs mount */
#define CFS_ECKPTBUSY (CFS_ERRNO_BASE + 4)  /* the checkpoint set has files still open for writing
                                               in this context */

typedef struct cfs_ctx cfs_ctx;

/* A file's striping: unit bytes (power of two, 64 KiB..64 MiB), k data units
 * and m parity units per stripe. Zero fields mean "inherit from the directory
 * or the cluster default", except that a layout naming k names m too:
 * {unit, 6, 0} is 6 data units without parity even under a 4+2 default. */
typedef struct cfs_layout {
  uint32_t unit;
  uint32_t k;
  uint32_t m;
} cfs_layout;

/* Attributes of a file. Used as `struct cfs_stat` (like `struct stat`): the
 * name cfs_stat also names the function below, so there is no typedef. */
struct cfs_stat {
  uint64_t ino;
  uint32_t mode; /* type and permission bits, as st_mode */
  uint32_t uid;
  uint32_t gid;
  uint32_t nlink;
  uint64_t size;
  int64_t atime_ns;
  int64_t mtime_ns;
  int64_t ctime_ns;
  cfs_layout layout; /* regular files */
};

/* Connects to a cluster. `cluster` is "HOST:PORT" of the M-worker, or several
 * separated by commas; or the absolute path of a cfs-fuse mount point (or of
 * anything inside one), whose cluster is found in the mount table
 * (-CFS_ENOTMOUNT if the path is on no cfs mount); or NULL for the
 * CFS_CLUSTER environment variable. `options` is NULL or "key=value,..." with keys:
 *   transport=tcp        data transport to S-workers: tcp, rdma (fails with
 *                        -ENODEV where RDMA cannot be used) or auto (RDMA where
 *                        it reaches the S-worker, else TCP); M-workers: TCP
 *   rdma_device=NAME     RDMA device to use (default: the one holding the address)
 *   timeout_ms=30000     per-request timeout
 *   readahead=2          stripes read ahead on sequential reads
 *   failure_timeout_ms=5000  parity layouts: an S-worker silent this long is
 *                        treated as failed and its units decoded from the others
 * Returns 0 and sets *out, or a negative errno (-EHOSTUNREACH if no M-worker
 * answers, -EINVAL for a bad option). */
int cfs_mount(const char* cluster, const char* options, cfs_ctx** out);

/* Flushes and closes every open handle, then frees the context. */
int cfs_unmount(cfs_ctx* ctx);

/* Opens `path` with open(2) flags (O_RDONLY, O_WRONLY, O_RDWR, O_CREAT,
 * O_EXCL, O_TRUNC, O_APPEND). With O_CREAT, `mode` gives the permission bits
 * and `hint` (may be NULL) the layout of a newly created file.
 * Returns a handle >= 0. */
int cfs_open(cfs_ctx* ctx, const char* path, int flags, uint32_t mode, const cfs_layout* hint);

/* Flushes buffered writes to the S-workers, reports the size to the M-worker
 * and releases the handle. */
int cfs_close(cfs_ctx* ctx, int fh);

/* Reads up to len bytes at off; returns the count (0 at end of file). */
int64_t cfs_pread(cfs_ctx* ctx, int fh, void* buf, size_t len, uint64_t off);

/* Writes len bytes at off (at end of file for O_APPEND handles); returns len. */
int64_t cfs_pwrite(cfs_ctx* ctx, int fh, const void* buf, size_t len, uint64_t off);

/* Vectored forms of cfs_pread/cfs_pwrite: the iovecs are filled/sent in order
 * as one contiguous file range. At most IOV_MAX (1024) entries. */
int64_t cfs_preadv(cfs_ctx* ctx, int fh, const struct iovec* iov, int iovcnt, uint64_t off);
int64_t cfs_pwritev(cfs_ctx* ctx, int fh, const struct iovec* iov, int iovcnt, uint64_t off);

/* Makes everything written through fh durable on the S-workers. */
int cfs_fsync(cfs_ctx* ctx, int fh);

int cfs_fstat(cfs_ctx* ctx, int fh, struct cfs_stat* st);
int cfs_ftruncate(cfs_ctx* ctx, int fh, uint64_t size);

int cfs_stat(cfs_ctx* ctx, const char* path, struct cfs_stat* st);
int cfs_mkdir(cfs_ctx* ctx, const char* path, uint32_t mode);
int cfs_rmdir(cfs_ctx* ctx, const char* path);
int cfs_unlink(cfs_ctx* ctx, const char* path);
/* Renames, replacing an existing `to` as rename(2) does. */
int cfs_rename(cfs_ctx* ctx, const char* from, const char* to);
int cfs_truncate(cfs_ctx* ctx, const char* path, uint64_t size);

typedef struct cfs_dirent {
  uint64_t ino;
  uint32_t type; /* st_mode >> 12: 4 directory, 8 regular, 10 symlink */
  char name[256];
} cfs_dirent;

/* Reads up to `max` entries of directory `path` starting after *cookie (0 to
 * begin); advances *cookie. Returns the number of entries, 0 at the end.
 * Positions stay valid while the directory changes. */
int cfs_readdir(cfs_ctx* ctx, const char* path, uint64_t* cookie, cfs_dirent* ents, int max);

/* Default layout for new files created in directory `path`. */
int cfs_setstripe(cfs_ctx* ctx, const char* path, const cfs_layout* layout);

/* ---------------------------------------------------------------------------
 * Asynchronous I/O over registered buffers.
 *
 * Register a buffer once (cfs_buf_register, or cfs_buf_alloc for one libcfs
 * allocates), then submit batches of requests on an I/O queue and reap their
 * completions. Requests move data straight between the registered memory and
 * the S-workers: writes are sent gathered from it (only parity is computed
 * into other memory), reads land in it. On RDMA the registration is the
 * memory region the S-workers read from and write to.
 *
 * A request's [addr, addr+len) must lie inside buffer `buf` (else
 * -CFS_ENOTREG). Requests in flight complete in any order; two requests in
 * flight on overlapping file ranges have no defined order (as with
 * io_submit). The buffer must not be changed (writes) or read (reads) until
 * the request's completion is reaped.
 *
 * Durability: CFS_IO_FSYNC makes every write of its handle that completed
 * before the fsync was submitted durable; cfs_close waits for the handle's
 * requests in flight. A queue is used by one thread at a time (give each
 * thread its own queue); contexts, buffers and handles are shared freely. */

/* Registers [addr, addr+len) for asynchronous I/O. Returns a buffer id >= 0.
 * Buffers may not overlap (-EINVAL). */
int cfs_buf_register(cfs_ctx* ctx, void* addr, size_t len);
/* Allocates len bytes (page aligned; huge pages when len allows), registers
 * them and stores the address in *addr. Returns the buffer id. */
int cfs_buf_alloc(cfs_ctx* ctx, size_t len, void** addr);
/* Forgets a registration (and frees memory from cfs_buf_alloc). -EBUSY while
 * requests using it are in flight; -CFS_ENOTREG for an unknown id. */
int cfs_buf_unregister(cfs_ctx* ctx, int buf);

enum { CFS_IO_READ = 0, CFS_IO_WRITE = 1, CFS_IO_FSYNC = 2 };

typedef struct cfs_iocb {
  uint32_t op;        /* CFS_IO_READ, CFS_IO_WRITE or CFS_IO_FSYNC */
  int fh;             /* an open handle of the queue's context */
  int buf;            /* registered buffer id (ignored for CFS_IO_FSYNC) */
  void* addr;         /* inside buffer `buf` */
  size_t len;         /* bytes (up to 1 GiB) */
  uint64_t off;       /* file offset (ignored for O_APPEND handles: appends) */
  uint64_t user_data; /* returned in the completion */
} cfs_iocb;

typedef struct cfs_ioevent {
  uint64_t user_data;
  int64_t res; /* bytes moved (reads: short only at end of file), or a negative error */
} cfs_ioevent;

typedef struct cfs_ioq_opts {
  uint32_t depth; /* requests in flight at most (default 64, 1..4096) */
  uint32_t batch; /* requests started together: contiguous writes of one handle
                     among them go out as one gathered write, so requests
                     smaller than a stripe still make full stripes
                     (default 16, 1..depth) */
} cfs_ioq_opts;

typedef struct cfs_ioq cfs_ioq;

/* Makes an I/O queue; opts may be NULL for the defaults. */
int cfs_ioq_create(cfs_ctx* ctx, const cfs_ioq_opts* opts, cfs_ioq** out);
/* Waits for the requests in flight, then frees the queue (unreaped
 * completions are dropped). */
int cfs_ioq_destroy(cfs_ioq* q);
/* Submits n requests, like io_submit(2): returns how many were accepted, in
 * order. Fewer than n when the queue is full (then at least one completion
 * must be reaped) or when request i is invalid: i > 0 are accepted and the
 * next submit starting at the bad one returns its error (-EBADF, -CFS_ENOTREG,
 * -EINVAL, -EFBIG); -EAGAIN if the queue is full and nothing was accepted. */
int cfs_ioq_submit(cfs_ioq* q, const cfs_iocb* cbs, int n);
/* Reaps up to max completions, waiting until at least min are there or
 * timeout_ms passed (-1: no limit, 0: poll). Returns the number reaped. */
int cfs_ioq_reap(cfs_ioq* q, cfs_ioevent* evs, int min, int max, int timeout_ms);
/* A file descriptor (eventfd) that polls readable while completions wait to
 * be reaped, for poll/epoll loops. Owned by the queue. */
int cfs_ioq_fd(cfs_ioq* q);
/* Requests submitted and not yet reaped. */
int cfs_ioq_pending(cfs_ioq* q);

/* ---------------------------------------------------------------------------
 * Checkpoint sets.
 *
 * A checkpoint set is a directory of files written by many processes (N-to-N:
 * a file per rank; N-to-1: slices of one shared file) that becomes visible as
 * complete all at once. `set` is "JOB/NAME": JOB a directory path inside CFS
 * (created if missing; leading '/' optional, may be nested, "proj/run7"), NAME
 * one path component not starting with '.'.
 *
 *   cfs_ckpt_begin   creates the set (or joins it: every rank may call it) and
 *                    returns the CFS directory to write the set's files into
 *                    (JOB/.pending/NAME). -CFS_ECOMMITTED if NAME is committed.
 *   cfs_ckpt_commit  call once, after every writer closed (or fsynced) its
 *                    files: makes every file of the set durable on the
 *                    S-workers, writes the set's manifest and moves it to
 *                    JOB/NAME in one atomic rename. A crash at any point
 *                    before the rename leaves the set pending, never complete.
 *                    Then applies the job's retention. -CFS_ECOMMITTED if it
 *                    was committed already; -CFS_ECKPTBUSY if this context
 *                    still has one of its files open for writing.
 *   cfs_ckpt_latest  the newest committed set of JOB (highest commit sequence).
 *   cfs_ckpt_path    the CFS directory of a committed set (JOB/NAME).
 *   cfs_ckpt_list    committed and pending sets of JOB, oldest first.
 *   cfs_ckpt_remove  deletes a set, committed or pending, with its files.
 *   cfs_ckpt_set_retention
 *                    keep only the newest `keep` committed sets of JOB; older
 *                    ones are removed at each commit (0: keep all, default).
 * Output strings are NUL-terminated; -ERANGE if `cap` is too small. */
int cfs_ckpt_begin(cfs_ctx* ctx, const char* set, char* dir, size_t cap);
int cfs_ckpt_commit(cfs_ctx* ctx, const char* set);
int cfs_ckpt_latest(cfs_ctx* ctx, const char* job, char* name, size_t cap);
int cfs_ckpt_path(cfs_ctx* ctx, const char* set, char* dir, size_t cap);
int cfs_ckpt_remove(cfs_ctx* ctx, const char* set);
int cfs_ckpt_set_retention(cfs_ctx* ctx, const char* job, uint32_t keep);
/* The job's retention (0: keep all) or a negative error. */
int cfs_ckpt_get_retention(cfs_ctx* ctx, const char* job);

enum { CFS_CKPT_PENDING = 0, CFS_CKPT_COMMITTED = 1 };

typedef struct cfs_ckpt_info {
  char name[256];
  uint32_t state;       /* CFS_CKPT_PENDING or CFS_CKPT_COMMITTED */
  uint64_t seq;         /* commit sequence within the job (0 while pending) */
  int64_t commit_ns;    /* commit time, ns since the epoch (0 while pending) */
  uint64_t files;       /* regular files in the set */
  uint64_t bytes;       /* their total size */
} cfs_ckpt_info;

/* Fills up to max entries, oldest commit first, pending sets last; returns
 * how many sets there are (may be more than max: call again with more room). */
int cfs_ckpt_list(cfs_ctx* ctx, const char* job, cfs_ckpt_info* out, int max);

#ifdef __cplusplus
}
#endif

#endif /* CFS_CFS_H */
