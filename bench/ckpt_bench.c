/*
 * cfs-ckpt-bench: checkpoint write bandwidth through libcfs (asynchronous or
 * synchronous API) or through a cfs-fuse mount (POSIX pwrite), N-to-N (a file
 * per writer) or N-to-1 (a slice of one shared file per writer), from
 * separate writer processes, as an HPC job writes a checkpoint.
 *
 *   cfs-ckpt-bench --mode async|sync|posix --pattern nn|n1 [--writers 8]
 *                  [--bs 1M] [--size 256M] [--depth 16] [--batch 16]
 *                  [--layout K+M[:UNIT]] [--dir /bench] [--cluster ADDR | --mount DIR]
 *                  [--no-commit] [--json]
 *
 * Each writer connects (libcfs modes) and opens its file before a common start;
 * the clock runs from the start until the checkpoint is durable: every writer
 * has fsynced and closed, and (libcfs modes, unless --no-commit) the set is
 * committed with cfs_ckpt_commit. CPU is the writers' user+system time
 * (getrusage of the children); for --mode posix the cfs-fuse daemon's CPU is
 * not included (bench/ckpt.sh adds it from /proc).
 * Output: one line of text, or JSON with --json.
 */
#define _GNU_SOURCE
#include <cfs/cfs.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct opts {
  const char* mode;
  const char* pattern;
  int writers;
  uint64_t bs, size;
  uint32_t depth, batch;
  cfs_layout layout;
  const char* dir;
  const char* cluster;
  const char* mount;
  int commit, json;
  const char* options; /* cfs_mount options, e.g. "transport=rdma" */
};

static void usage(int rc) {
  fprintf(rc ? stderr : stdout,
          "usage: cfs-ckpt-bench --mode async|sync|posix --pattern nn|n1 [--writers N] [--bs SIZE]\n"
          "         [--size SIZE-PER-WRITER] [--depth N] [--batch N] [--layout K+M[:UNIT]]\n"
          "         [--dir CFS-DIR] [--cluster HOST:PORT | --mount DIR] [--options K=V,...]\n"
          "         [--no-commit] [--json]\n"
          "Writes a checkpoint from N writer processes and prints the bandwidth and CPU per GiB.\n"
          "  --mode     async: cfs_ioq over a registered buffer; sync: cfs_pwrite; posix: pwrite\n"
          "             on the cfs-fuse mount (needs --mount)\n"
          "  --pattern  nn: a file per writer; n1: one shared file, a slice per writer\n"
          "  --layout   layout of the files, e.g. 4+2:1M (default: the directory's)\n"
          "  --options  libcfs client options (cfs_mount), e.g. transport=rdma\n");
  exit(rc);
}

static uint64_t parse_size(const char* s) {
  char* end;
  double v = strtod(s, &end);
  uint64_t m = 1;
  switch (*end) {
    case 'k': case 'K': m = 1ull << 10; break;
    case 'm': case 'M': m = 1ull << 20; break;
    case 'g': case 'G': m = 1ull << 30; break;
    case '\0': break;
    default: fprintf(stderr, "bad size %s\n", s); exit(2);
  }
  if (v <= 0) { fprintf(stderr, "bad size %s\n", s); exit(2); }
  return (uint64_t)(v * (double)m);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char* what, long rc) {
  fprintf(stderr, "cfs-ckpt-bench: %s: %s\n", what, cfs_strerror((int)rc));
  exit(1);
}

/* One writer: waits for the start byte on `go`, writes, fsyncs, closes. */
static void writer(const struct opts* o, int rank, const char* setdir, int go) {
  uint64_t base = strcmp(o->pattern, "n1") == 0 ? (uint64_t)rank * o->size : 0;
  char path[4096];
  if (strcmp(o->pattern, "n1") == 0)
    snprintf(path, sizeof path, "%s/shared", setdir);
  else
    snprintf(path, sizeof path, "%s/rank-%05d", setdir, rank);
  size_t buflen = strcmp(o->mode, "async") == 0 ? (size_t)o->bs * o->depth : (size_t)o->bs;
  if (buflen > o->size) buflen = (size_t)((o->size + o->bs - 1) / o->bs * o->bs);
  char c;
  if (strcmp(o->mode, "posix") == 0) {
    char local[8192];
    snprintf(local, sizeof local, "%s%s", o->mount, path);
    int fd = open(local, O_CREAT | O_WRONLY, 0644);
    if (fd < 0) { perror(local); exit(1); }
    char* buf = mmap(NULL, buflen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(buf, rank + 1, buflen);
    if (read(go, &c, 1) != 1) exit(1);
    for (uint64_t off = 0; off < o->size; off += o->bs) {
      size_t n = o->size - off < o->bs ? (size_t)(o->size - off) : (size_t)o->bs;
      if (pwrite(fd, buf, n, (off_t)(base + off)) != (ssize_t)n) { perror("pwrite"); exit(1); }
    }
    if (fsync(fd) != 0 || close(fd) != 0) { perror("fsync/close"); exit(1); }
    exit(0);
  }
  cfs_ctx* ctx;
  int rc = cfs_mount(o->cluster ? o->cluster : o->mount, o->options, &ctx);
  if (rc < 0) die("cfs_mount", rc);
  int fh = cfs_open(ctx, path, O_CREAT | O_WRONLY, 0644,
                    o->layout.k || o->layout.unit ? &o->layout : NULL);
  if (fh < 0) die(path, fh);
  void* buf;
  int b = cfs_buf_alloc(ctx, buflen, &buf);
  if (b < 0) die("cfs_buf_alloc", b);
  memset(buf, rank + 1, buflen);
  if (read(go, &c, 1) != 1) exit(1);
  if (strcmp(o->mode, "sync") == 0) {
    for (uint64_t off = 0; off < o->size; off += o->bs) {
      size_t n = o->size - off < o->bs ? (size_t)(o->size - off) : (size_t)o->bs;
      int64_t w = cfs_pwrite(ctx, fh, buf, n, base + off);
      if (w != (int64_t)n) die("cfs_pwrite", w);
    }
  } else {
    cfs_ioq_opts qo = {o->depth, o->batch};
    cfs_ioq* q;
    if ((rc = cfs_ioq_create(ctx, &qo, &q)) < 0) die("cfs_ioq_create", rc);
    /* The buffer holds `depth` requests side by side; request i uses slot
     * i % depth, so consecutive requests are also consecutive in memory
     * (one batch merges into whole stripes) until the buffer wraps. */
    uint64_t next = 0, done = 0, nreq = (o->size + o->bs - 1) / o->bs;
    uint32_t slots = (uint32_t)(buflen / o->bs);
    cfs_iocb cbs[256];
    cfs_ioevent ev[256];
    while (done < nreq) {
      int k = 0;
      while (next < nreq && k < 256 && next - done < slots) {
        uint64_t off = next * o->bs;
        size_t n = o->size - off < o->bs ? (size_t)(o->size - off) : (size_t)o->bs;
        cfs_iocb cb = {CFS_IO_WRITE, fh, b, (char*)buf + (next % slots) * o->bs, n, base + off, next};
        cbs[k++] = cb;
        next++;
      }
      for (int i = 0; i < k;) {
        int s = cfs_ioq_submit(q, cbs + i, k - i);
        if (s < 0) die("cfs_ioq_submit", s);
        i += s;
      }
      int got = cfs_ioq_reap(q, ev, 1, 256, -1);
      for (int i = 0; i < got; i++)
        if (ev[i].res < 0) die("async write", ev[i].res);
      done += (uint64_t)got;
    }
    cfs_ioq_destroy(q);
  }
  if ((rc = cfs_fsync(ctx, fh)) < 0) die("cfs_fsync", rc);
  if ((rc = cfs_close(ctx, fh)) < 0) die("cfs_close", rc);
  cfs_unmount(ctx);
  exit(0);
}

int main(int argc, char** argv) {
  struct opts o = {NULL, NULL, 8, 1 << 20, 256ull << 20, 16, 16, {0, 0, 0}, "/bench", NULL, NULL, 1, 0, NULL};
  for (int i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) usage(0);
    else if (!strcmp(a, "--no-commit")) o.commit = 0;
    else if (!strcmp(a, "--json")) o.json = 1;
    else if (!v) usage(2);
    else {
      i++;
      if (!strcmp(a, "--mode")) o.mode = v;
      else if (!strcmp(a, "--pattern")) o.pattern = v;
      else if (!strcmp(a, "--writers")) o.writers = atoi(v);
      else if (!strcmp(a, "--bs")) o.bs = parse_size(v);
      else if (!strcmp(a, "--size")) o.size = parse_size(v);
      else if (!strcmp(a, "--depth")) o.depth = (uint32_t)atoi(v);
      else if (!strcmp(a, "--batch")) o.batch = (uint32_t)atoi(v);
      else if (!strcmp(a, "--dir")) o.dir = v;
      else if (!strcmp(a, "--cluster")) o.cluster = v;
      else if (!strcmp(a, "--mount")) o.mount = v;
      else if (!strcmp(a, "--options")) o.options = v;
      else if (!strcmp(a, "--layout")) {
        char unit[32] = "";
        if (sscanf(v, "%u+%u:%31s", &o.layout.k, &o.layout.m, unit) < 2) usage(2);
        if (unit[0]) o.layout.unit = (uint32_t)parse_size(unit);
      } else usage(2);
    }
  }
  if (!o.mode || !o.pattern || o.writers < 1 || o.depth < 1 || o.batch < 1 || o.batch > o.depth) usage(2);
  if (strcmp(o.mode, "async") && strcmp(o.mode, "sync") && strcmp(o.mode, "posix")) usage(2);
  if (strcmp(o.pattern, "nn") && strcmp(o.pattern, "n1")) usage(2);
  if (!o.cluster && !o.mount) { fprintf(stderr, "cfs-ckpt-bench: give --cluster or --mount\n"); return 2; }
  if (!strcmp(o.mode, "posix") && !o.mount) { fprintf(stderr, "cfs-ckpt-bench: --mode posix needs --mount\n"); return 2; }

  /* The set: a checkpoint set under DIR (a fresh name each run). */
  cfs_ctx* ctx;
  int rc = cfs_mount(o.cluster ? o.cluster : o.mount, o.options, &ctx);
  if (rc < 0) die("cfs_mount", rc);
  char set[512], setdir[1024];
  snprintf(set, sizeof set, "%s/%s-%s-%d-%lld", o.dir, o.mode, o.pattern, getpid(), (long long)time(NULL));
  rc = cfs_ckpt_begin(ctx, set, setdir, sizeof setdir);
  if (rc < 0) die("cfs_ckpt_begin", rc);
  if (o.layout.k || o.layout.unit) {
    rc = cfs_setstripe(ctx, setdir, &o.layout);
    if (rc < 0) die("cfs_setstripe", rc);
  }

  int go[2];
  if (pipe(go) != 0) return 1;
  pid_t* pids = calloc((size_t)o.writers, sizeof *pids);
  for (int r = 0; r < o.writers; r++) {
    pids[r] = fork();
    if (pids[r] == 0) {
      close(go[1]);
      writer(&o, r, setdir, go[0]);
    }
  }
  close(go[0]);
  usleep(300 * 1000); /* every writer connected and opened (they block on the pipe) */
  double t0 = now();
  for (int r = 0; r < o.writers; r++)
    if (write(go[1], "g", 1) != 1) return 1;
  int failed = 0;
  for (int r = 0; r < o.writers; r++) {
    int st;
    waitpid(pids[r], &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
  }
  if (failed) { fprintf(stderr, "cfs-ckpt-bench: %d writers failed\n", failed); return 1; }
  if (o.commit && (rc = cfs_ckpt_commit(ctx, set)) < 0) die("cfs_ckpt_commit", rc);
  double secs = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_CHILDREN, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  double gib = (double)o.size * o.writers / (1u << 30);
  double mibs = gib * 1024 / secs;
  if (o.json)
    printf("{\"mode\":\"%s\",\"pattern\":\"%s\",\"writers\":%d,\"bs\":%llu,\"bytes\":%llu,"
           "\"seconds\":%.3f,\"mib_s\":%.1f,\"cpu_s\":%.3f,\"cpu_s_per_gib\":%.3f,\"set\":\"%s\"}\n",
           o.mode, o.pattern, o.writers, (unsigned long long)o.bs,
           (unsigned long long)(o.size * (uint64_t)o.writers), secs, mibs, cpu, cpu / gib, set);
  else
    printf("%s %s: %d writers x %llu MiB in %llu KiB requests: %.1f MiB/s (%.2f s), writers' CPU %.2f s/GiB\n",
           o.mode, o.pattern, o.writers, (unsigned long long)(o.size >> 20),
           (unsigned long long)(o.bs >> 10), mibs, secs, cpu / gib);
  cfs_unmount(ctx);
  return 0;
}
