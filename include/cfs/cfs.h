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

#ifdef __cplusplus
extern "C" {
#endif

#define CFS_VERSION_MAJOR 0
#define CFS_VERSION_MINOR 1
#define CFS_VERSION_PATCH 0

/* Library version as "MAJOR.MINOR.PATCH". */
const char* cfs_version(void);

/* Text for a (negative or positive) errno value returned by a cfs_ call. */
const char* cfs_strerror(int err);

typedef struct cfs_ctx cfs_ctx;

/* A file's striping: unit bytes (power of two, 64 KiB..64 MiB), k data units
 * and m parity units per stripe. Zero fields mean "inherit from the directory
 * or the cluster default". */
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
 * separated by commas. `options` is NULL or "key=value,key=value" with keys:
 *   transport=tcp        data transport
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

#ifdef __cplusplus
}
#endif

#endif /* CFS_CFS_H */
