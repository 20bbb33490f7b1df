/* cfs_fio_names.c - fio file names to CFS paths (see cfs_fio_names.h). */
#include "cfs_fio_names.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Lexically normalises absolute path `in` ("//", ".", ".." resolved; ".." at
 * the root stays at the root) into out. */
static int normalize(const char* in, char* out, size_t cap) {
  size_t len = 0;
  const char* p = in;
  if (cap < 2) return -ENAMETOOLONG;
  while (*p) {
    while (*p == '/') p++;
    const char* end = p;
    while (*end && *end != '/') end++;
    size_t n = (size_t)(end - p);
    if (n == 0) break;
    if (n == 1 && p[0] == '.') {
      /* nothing */
    } else if (n == 2 && p[0] == '.' && p[1] == '.') {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--; /* the '/' before the component */
    } else {
      if (len + 1 + n + 1 > cap) return -ENAMETOOLONG;
      out[len++] = '/';
      memcpy(out + len, p, n);
      len += n;
    }
    p = end;
  }
  if (len == 0) out[len++] = '/';
  out[len] = '\0';
  return 0;
}

/* Joins a and b with one '/' and normalises. */
static int join(const char* a, const char* b, char* out, size_t cap) {
  size_t la = strlen(a), lb = strlen(b);
  char* tmp = malloc(la + lb + 2);
  if (!tmp) return -ENOMEM;
  memcpy(tmp, a, la);
  tmp[la] = '/';
  memcpy(tmp + la + 1, b, lb + 1);
  int rc = normalize(tmp, out, cap);
  free(tmp);
  return rc;
}

/* /proc/mounts escapes space, tab, newline and backslash as \ooo. */
static void unescape(char* s) {
  char* w = s;
  for (char* r = s; *r; r++) {
    if (r[0] == '\\' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
        r[3] <= '7') {
      *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
      r += 3;
    } else {
      *w++ = *r;
    }
  }
  *w = '\0';
}

/* If path is mnt or below it, the part below ("/" for mnt itself); else NULL. */
static const char* below(const char* path, const char* mnt) {
  size_t n = strlen(mnt);
  if (n == 0) return NULL;
  if (strcmp(mnt, "/") == 0) return path;
  if (strncmp(path, mnt, n) != 0) return NULL;
  if (path[n] == '\0') return "/";
  return path[n] == '/' ? path + n : NULL;
}

int cfs_fio_mount_of(const char* mounts_file, const char* abs, char* mnt, size_t cap) {
  FILE* f = fopen(mounts_file, "re");
  mnt[0] = '\0';
  if (!f) return -errno;
  char line[3 * PATH_MAX];
  size_t best = 0;
  while (fgets(line, sizeof line, f)) {
    char* save = NULL;
    char* src = strtok_r(line, " \t\n", &save);
    char* dir = strtok_r(NULL, " \t\n", &save);
    char* type = strtok_r(NULL, " \t\n", &save);
    if (!src || !dir || !type) continue;
    if (strcmp(type, "fuse.cfs") != 0 && strcmp(type, "cfs") != 0) continue;
    unescape(dir);
    size_t n = strlen(dir);
    /* A later mount on the same point hides the earlier one: >= keeps the last. */
    if (below(abs, dir) && n >= best && n < cap) {
      memcpy(mnt, dir, n + 1);
      best = n;
    }
  }
  fclose(f);
  return 0;
}

/* Like realpath() for a path whose tail may not exist yet: resolves the
 * deepest existing ancestor and appends the rest. */
static int canonical(const char* abs, char* out, size_t cap) {
  char head[PATH_MAX];
  size_t len = strlen(abs);
  if (len >= sizeof head) return -ENAMETOOLONG;
  memcpy(head, abs, len + 1);
  for (;;) {
    char real[PATH_MAX];
    if (realpath(len ? head : "/", real)) return join(real, abs + len, out, cap);
    if (len == 0) return -errno;
    while (len > 0 && head[len - 1] != '/') len--; /* drop the last component */
    if (len > 0) len--;                             /* and its '/' */
    head[len] = '\0';
  }
}

static int map_local(const char* mnt, const char* abs, char* out, size_t cap) {
  const char* rest = below(abs, mnt);
  if (!rest) return 1;
  if (strlen(rest) + 1 > cap) return -ENAMETOOLONG;
  strcpy(out, rest);
  return 0;
}

int cfs_fio_names_init(struct cfs_fio_names* n, const char* mount_dir, char* err, size_t errcap) {
  memset(n, 0, sizeof *n);
  if (!mount_dir) {
    strcpy(n->base, "/");
    return 0;
  }
  char abs[PATH_MAX], cwd[PATH_MAX];
  int rc;
  if (mount_dir[0] == '/') {
    rc = normalize(mount_dir, abs, sizeof abs);
  } else {
    if (!getcwd(cwd, sizeof cwd)) return -errno;
    rc = join(cwd, mount_dir, abs, sizeof abs);
  }
  if (rc < 0) return rc;
  const char* mounts = "/proc/self/mounts";
  cfs_fio_mount_of(mounts, abs, n->mnt, sizeof n->mnt);
  if (!n->mnt[0]) {
    char canon[PATH_MAX];
    if (canonical(abs, canon, sizeof canon) == 0) {
      cfs_fio_mount_of(mounts, canon, n->mnt, sizeof n->mnt);
      if (n->mnt[0]) strcpy(abs, canon);
    }
  }
  if (!n->mnt[0]) {
    snprintf(err, errcap, "cfs_mount=%s: not on a cfs-fuse mount (no fuse.cfs entry in %s)",
             mount_dir, mounts);
    return -ENOENT;
  }
  return map_local(n->mnt, abs, n->base, sizeof n->base) < 0 ? -ENAMETOOLONG : 0;
}

int cfs_fio_names_map(const struct cfs_fio_names* n, const char* name, char* out, size_t cap) {
  char abs[PATH_MAX];
  int rc = name[0] == '/' ? normalize(name, abs, sizeof abs) : join(n->base, name, abs, sizeof abs);
  if (rc < 0) return rc;
  if (name[0] == '/' && n->mnt[0]) {
    rc = map_local(n->mnt, abs, out, cap);
    if (rc <= 0) return rc;
    /* Under the mount through a symlink (e.g. /tmp -> /private/tmp)? */
    char canon[PATH_MAX];
    if (canonical(abs, canon, sizeof canon) == 0) {
      rc = map_local(n->mnt, canon, out, cap);
      if (rc <= 0) return rc;
    }
  }
  if (strlen(abs) + 1 > cap) return -ENAMETOOLONG;
  strcpy(out, abs);
  return 0;
}
