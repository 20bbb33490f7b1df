/*
 * cfs_fio_names.h - how the fio engine turns fio's file names into CFS paths.
 *
 * Without cfs_mount= (cfs_cluster=HOST:PORT): absolute names are CFS paths,
 * relative names are relative to the CFS root.
 * With cfs_mount=DIR (DIR on a cfs-fuse mount MNT): a name under MNT is the
 * CFS path below MNT (MNT/a/b -> /a/b), a relative name is relative to DIR,
 * and any other absolute name is a CFS path as it stands. The mount is only
 * used to find the cluster and to name files; no I/O goes through it.
 */
#ifndef CFS_FIO_NAMES_H
#define CFS_FIO_NAMES_H

#include <limits.h>
#include <stddef.h>

struct cfs_fio_names {
  char base[PATH_MAX]; /* CFS directory relative names resolve against */
  char mnt[PATH_MAX];  /* the cfs-fuse mount point holding DIR; "" without one */
};

/* Sets up the mapping for cfs_mount=mount_dir, or for a cluster address when
 * mount_dir is NULL. Returns 0, or -ENOENT when mount_dir is on no cfs mount
 * (the message goes to err). */
int cfs_fio_names_init(struct cfs_fio_names* n, const char* mount_dir, char* err, size_t errcap);

/* Writes the CFS path of fio file `name` to out. Returns 0 or -ENAMETOOLONG. */
int cfs_fio_names_map(const struct cfs_fio_names* n, const char* name, char* out, size_t cap);

/* The longest cfs-fuse mount point (from mounts_file, e.g. /proc/self/mounts)
 * that is `abs` or above it, lexically; "" if none. Exposed for tests. */
int cfs_fio_mount_of(const char* mounts_file, const char* abs, char* mnt, size_t cap);

#endif
