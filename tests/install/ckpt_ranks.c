/*
 * ckpt_ranks: checkpoint/restart from 8 processes through the installed libcfs
 * (issue 4 point 8). Built by check_ckpt_ranks.sh against the installed
 * headers with `pkg-config cfs`, so it uses only the public C API.
 *
 *   step-1   8 ranks (forked processes) each cfs_mount, cfs_ckpt_begin, write
 *            their own N-to-N file with the asynchronous API (registered
 *            buffer, deep queue, mixed request sizes) and their slice of one
 *            shared N-to-1 file (cfs_pwrite/cfs_pwritev); the parent waits
 *            for all of them and commits.
 *   step-2   the same, but the parent SIGKILLs one rank while its requests
 *            are in flight, sees the failure and does not commit.
 *   restart  a fresh process: cfs_ckpt_latest is step-1, every byte of every
 *            step-1 file matches, step-2 is listed pending and has no path;
 *            bad inputs give their documented errors; the pending step-2 is
 *            removed.
 *   resume   step-2 again from scratch with 8 ranks, committed; a fresh
 *            process finds step-2 latest and verifies it.
 *
 * Usage: ckpt_ranks HOST:PORT   (exit 0 when every check passed)
 */
#define _GNU_SOURCE
#include <cfs/cfs.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NRANKS 8
#define VICTIM 5                         /* the rank killed in step-2 */
#define JOB "job"
#define SHARED_SEED_RANK 999             /* the shared file's pattern: one seed for the whole file */
#define SLICE ((uint64_t)(3u << 20) + (512u << 10) + 4096u) /* not stripe aligned: slices share stripes */
#define QDEPTH 64
#define QBATCH 16

static const char* g_cluster;
static char g_who[64] = "parent";

static void die(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "ckpt_ranks: %s: FAIL: ", g_who);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

static void ok(const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  printf("ckpt_ranks: %s: ", g_who);
  vprintf(fmt, ap);
  putchar('\n');
  fflush(stdout);
  va_end(ap);
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- deterministic content: byte at offset o of a file with seed s ---- */

static uint64_t mix(uint64_t x) { /* splitmix64 */
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

static uint64_t seed_of(int step, int rank) { return (uint64_t)step * 1000u + (uint64_t)rank; }

static void fill(uint8_t* p, size_t len, uint64_t seed, uint64_t off) {
  uint64_t k = seed * 0xD6E8FEB86659FD93ull;
  size_t i = 0;
  while (i < len) {
    uint64_t o = off + i;
    uint64_t w = mix(k ^ (o >> 3));
    for (unsigned b = (unsigned)(o & 7); b < 8 && i < len; b++, i++) p[i] = (uint8_t)(w >> (8 * b));
  }
}

/* Size of rank r's N-to-N file: some MiB, odd so the tail is a partial unit. */
static uint64_t nton_size(int rank) { return (12ull << 20) + (uint64_t)rank * 98317u + 777u; }
static uint64_t shared_size(void) { return SLICE * NRANKS; }

/* Mixed request sizes: tiny, sub-unit, unaligned, multi-unit. */
static const size_t kWriteSizes[] = {4096, 65536 + 13, 262144, 333,   131072, (1u << 20) + 5, 8191, 65536,
                                     16384, 512,        100000, 12288, 131072, 4096,           24576, 196608};
static const size_t kReadSizes[] = {1u << 20, 12345, 4096, 65536, 777, 524288, 32768, 8192, 200000, 4096};

static void nton_path(char* out, size_t cap, const char* dir, int rank) {
  snprintf(out, cap, "%s/rank-%03d.dat", dir, rank);
}

static cfs_ctx* mount_or_die(void) {
  cfs_ctx* ctx = NULL;
  int rc = cfs_mount(g_cluster, NULL, &ctx);
  if (rc < 0 || !ctx) die("cfs_mount(%s): %d %s", g_cluster, rc, cfs_strerror(rc));
  return ctx;
}

/* ---- asynchronous transfer of a whole file through one registered buffer ---- */

/* Moves [0, size) between the file and base (registered buffer `buf`) with
 * requests of the given sizes cycled, up to QDEPTH in flight. For the victim,
 * `notify_fd` gets a byte once half the requests are in flight and the
 * writes then repeat forever (the parent kills the process meanwhile). */
static void async_transfer(cfs_ctx* ctx, int fh, int buf, uint8_t* base, uint64_t size, int op,
                           const size_t* sizes, size_t nsizes, int notify_fd) {
  size_t cap = 1024, n = 0;
  cfs_iocb* cbs = calloc(cap, sizeof *cbs);
  for (uint64_t off = 0; off < size; n++) {
    if (n == cap) cbs = realloc(cbs, (cap *= 2) * sizeof *cbs);
    size_t len = sizes[n % nsizes];
    if (len > size - off) len = (size_t)(size - off);
    cbs[n] = (cfs_iocb){.op = (uint32_t)op, .fh = fh, .buf = buf, .addr = base + off, .len = len,
                        .off = off, .user_data = n};
    off += len;
  }
  cfs_ioq_opts opts = {.depth = QDEPTH, .batch = QBATCH};
  cfs_ioq* q = NULL;
  int rc = cfs_ioq_create(ctx, &opts, &q);
  if (rc < 0) die("cfs_ioq_create: %s", cfs_strerror(rc));
  cfs_ioevent evs[QDEPTH];
  int max_inflight = 0;
  for (int round = 0;; round++) {
    size_t next = 0, done = 0;
    int notified = notify_fd < 0 || round > 0;
    while (done < n) {
      while (next < n) {
        size_t want = n - next < QBATCH ? n - next : QBATCH;
        rc = cfs_ioq_submit(q, cbs + next, (int)want);
        if (rc == -EAGAIN) break;
        if (rc <= 0) die("cfs_ioq_submit of request %zu: %d %s", next, rc, cfs_strerror(rc));
        next += (size_t)rc;
        if ((size_t)rc < want) break; /* full */
      }
      int pending = cfs_ioq_pending(q);
      if (pending > max_inflight) max_inflight = pending;
      if (pending != (int)(next - done)) die("cfs_ioq_pending %d, expected %zu", pending, next - done);
      if (!notified && next >= n / 2) {
        if (write(notify_fd, "k", 1) != 1) die("notify: %s", strerror(errno));
        notified = 1;
      }
      int got = cfs_ioq_reap(q, evs, 1, QDEPTH, 60000);
      if (got <= 0) die("cfs_ioq_reap: %d %s (%zu of %zu done)", got, got ? cfs_strerror(got) : "timeout", done, n);
      for (int i = 0; i < got; i++) {
        uint64_t id = evs[i].user_data;
        if (id >= n) die("completion with unknown user_data %" PRIu64, id);
        int64_t want_res = (int64_t)cbs[id].len;
        if (evs[i].res != want_res)
          die("%s request %" PRIu64 " (off %" PRIu64 " len %zu): res %" PRId64 " %s", op == CFS_IO_WRITE ? "write" : "read",
              id, cbs[id].off, cbs[id].len, evs[i].res, evs[i].res < 0 ? cfs_strerror((int)evs[i].res) : "(short)");
      }
      done += (size_t)got;
    }
    if (notify_fd < 0) break;
    if (round > 2000) die("victim was never killed");
  }
  if (op == CFS_IO_WRITE) {
    /* An fsync request after the writes: they are durable once it completes. */
    cfs_iocb f = {.op = CFS_IO_FSYNC, .fh = fh, .buf = -1, .user_data = 4242};
    if ((rc = cfs_ioq_submit(q, &f, 1)) != 1) die("submit fsync: %d %s", rc, cfs_strerror(rc));
    if ((rc = cfs_ioq_reap(q, evs, 1, 1, 60000)) != 1) die("reap fsync: %d", rc);
    if (evs[0].user_data != 4242 || evs[0].res != 0) die("fsync completion res %" PRId64, evs[0].res);
  }
  /* Everything is submitted before the first reap: the queue must fill. */
  if (max_inflight < (int)(n < QDEPTH ? n : QDEPTH))
    die("at most %d requests were in flight (%zu requests, depth %d)", max_inflight, n, QDEPTH);
  if ((rc = cfs_ioq_destroy(q)) < 0) die("cfs_ioq_destroy: %s", cfs_strerror(rc));
  free(cbs);
}

/* ---- a rank of a checkpoint step ---- */

static void rank_main(int step, int rank, int notify_fd) {
  snprintf(g_who, sizeof g_who, "step-%d rank %d", step, rank);
  cfs_ctx* ctx = mount_or_die();
  char set[64], dir[4096], path[4200];
  snprintf(set, sizeof set, JOB "/step-%d", step);
  int rc = cfs_ckpt_begin(ctx, set, dir, sizeof dir);
  if (rc < 0) die("cfs_ckpt_begin(%s): %s", set, cfs_strerror(rc));

  /* N-to-N: the whole file in one registered buffer, written asynchronously. */
  uint64_t size = nton_size(rank);
  void* mem = NULL;
  int buf = cfs_buf_alloc(ctx, size, &mem);
  if (buf < 0) die("cfs_buf_alloc(%" PRIu64 "): %s", size, cfs_strerror(buf));
  fill(mem, size, seed_of(step, rank), 0);
  nton_path(path, sizeof path, dir, rank);
  cfs_layout hint = {.unit = 1u << 20, .k = 4, .m = 2};
  int fh = cfs_open(ctx, path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &hint);
  if (fh < 0) die("cfs_open(%s): %s", path, cfs_strerror(fh));
  async_transfer(ctx, fh, buf, mem, size, CFS_IO_WRITE, kWriteSizes, sizeof kWriteSizes / sizeof *kWriteSizes,
                 rank == VICTIM ? notify_fd : -1);
  if ((rc = cfs_close(ctx, fh)) < 0) die("cfs_close(%s): %s", path, cfs_strerror(rc));
  if ((rc = cfs_buf_unregister(ctx, buf)) < 0) die("cfs_buf_unregister: %s", cfs_strerror(rc));

  /* N-to-1: this rank's slice of the shared file, synchronous, alternating
   * cfs_pwrite and a 3-piece cfs_pwritev. */
  snprintf(path, sizeof path, "%s/shared.dat", dir);
  fh = cfs_open(ctx, path, O_WRONLY | O_CREAT, 0644, &hint);
  if (fh < 0) die("cfs_open(%s): %s", path, cfs_strerror(fh));
  uint64_t start = (uint64_t)rank * SLICE;
  uint8_t* slice = malloc(SLICE);
  fill(slice, SLICE, seed_of(step, SHARED_SEED_RANK), start);
  size_t chunk = (1u << 20) + 4099, i = 0;
  for (uint64_t off = 0; off < SLICE; off += chunk, i++) {
    size_t len = SLICE - off < chunk ? (size_t)(SLICE - off) : chunk;
    int64_t w;
    if (i % 2 == 0) {
      w = cfs_pwrite(ctx, fh, slice + off, len, start + off);
    } else {
      size_t a = len / 3, b = len / 5;
      struct iovec iov[3] = {{slice + off, a}, {slice + off + a, b}, {slice + off + a + b, len - a - b}};
      w = cfs_pwritev(ctx, fh, iov, 3, start + off);
    }
    if (w != (int64_t)len) die("write of the shared slice at %" PRIu64 ": %" PRId64 " %s", start + off, w,
                               w < 0 ? cfs_strerror((int)w) : "(short)");
  }
  if ((rc = cfs_close(ctx, fh)) < 0) die("cfs_close(shared): %s", cfs_strerror(rc));
  free(slice);
  if ((rc = cfs_unmount(ctx)) < 0) die("cfs_unmount: %s", cfs_strerror(rc));
  exit(0);
}

/* Forks the ranks of a step; kills VICTIM once its writes are in flight if
 * `kill_victim`. Returns the number of ranks that failed. */
static int run_step(int step, int kill_victim) {
  int pfd[2];
  if (pipe(pfd) < 0) die("pipe: %s", strerror(errno));
  pid_t pids[NRANKS];
  double t0 = now();
  for (int r = 0; r < NRANKS; r++) {
    fflush(stdout);
    pids[r] = fork();
    if (pids[r] < 0) die("fork: %s", strerror(errno));
    if (pids[r] == 0) {
      close(pfd[0]);
      rank_main(step, r, kill_victim ? pfd[1] : -1);
    }
  }
  close(pfd[1]);
  if (kill_victim) {
    char c;
    ssize_t got = read(pfd[0], &c, 1);
    if (got != 1) die("step-%d: rank %d never reported its writes in flight", step, VICTIM);
    if (kill(pids[VICTIM], SIGKILL) < 0) die("kill: %s", strerror(errno));
    ok("step-%d: SIGKILLed rank %d (pid %d) with its writes in flight", step, VICTIM, (int)pids[VICTIM]);
  }
  close(pfd[0]);
  int failed = 0;
  for (int r = 0; r < NRANKS; r++) {
    int st;
    if (waitpid(pids[r], &st, 0) < 0) die("waitpid: %s", strerror(errno));
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) continue;
    failed++;
    if (kill_victim && r == VICTIM) {
      if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGKILL) die("step-%d: the victim ended with status 0x%x, not SIGKILL", step, st);
    } else {
      die("step-%d: rank %d failed (status 0x%x)", step, r, st);
    }
  }
  uint64_t bytes = shared_size();
  for (int r = 0; r < NRANKS; r++) bytes += nton_size(r);
  ok("step-%d: %d ranks done in %.2f s (%.1f MiB, %d failed)", step, NRANKS, now() - t0, bytes / 1048576.0, failed);
  return failed;
}

static void commit(int step) {
  cfs_ctx* ctx = mount_or_die();
  char set[64];
  snprintf(set, sizeof set, JOB "/step-%d", step);
  int rc = cfs_ckpt_commit(ctx, set);
  if (rc < 0) die("cfs_ckpt_commit(%s): %d %s", set, rc, cfs_strerror(rc));
  if ((rc = cfs_unmount(ctx)) < 0) die("cfs_unmount: %s", cfs_strerror(rc));
  ok("committed %s", set);
}

/* ---- verification ---- */

static void compare(const uint8_t* got, const uint8_t* want, size_t len, uint64_t off, const char* path) {
  if (memcmp(got, want, len) == 0) return;
  size_t i = 0;
  while (got[i] == want[i]) i++;
  die("%s: byte %" PRIu64 " is 0x%02x, expected 0x%02x", path, off + i, got[i], want[i]);
}

static void expect_size(cfs_ctx* ctx, const char* path, uint64_t size) {
  struct cfs_stat st;
  int rc = cfs_stat(ctx, path, &st);
  if (rc < 0) die("cfs_stat(%s): %s", path, cfs_strerror(rc));
  if (st.size != size) die("%s: size %" PRIu64 ", expected %" PRIu64, path, st.size, size);
}

/* Verifies every file of committed set step-N: N-to-N files read back
 * asynchronously (mixed sizes), the shared file with cfs_pread/cfs_preadv. */
static uint64_t verify_step(cfs_ctx* ctx, int step) {
  char set[64], dir[4096], path[4200];
  snprintf(set, sizeof set, JOB "/step-%d", step);
  int rc = cfs_ckpt_path(ctx, set, dir, sizeof dir);
  if (rc < 0) die("cfs_ckpt_path(%s): %s", set, cfs_strerror(rc));
  uint64_t total = 0;
  for (int r = 0; r < NRANKS; r++) {
    uint64_t size = nton_size(r);
    nton_path(path, sizeof path, dir, r);
    expect_size(ctx, path, size);
    void* mem = NULL;
    int buf = cfs_buf_alloc(ctx, size, &mem);
    if (buf < 0) die("cfs_buf_alloc: %s", cfs_strerror(buf));
    memset(mem, 0xA5, size);
    int fh = cfs_open(ctx, path, O_RDONLY, 0, NULL);
    if (fh < 0) die("cfs_open(%s): %s", path, cfs_strerror(fh));
    async_transfer(ctx, fh, buf, mem, size, CFS_IO_READ, kReadSizes, sizeof kReadSizes / sizeof *kReadSizes, -1);
    uint8_t* want = malloc(size);
    fill(want, size, seed_of(step, r), 0);
    compare(mem, want, size, 0, path);
    free(want);
    if ((rc = cfs_close(ctx, fh)) < 0) die("cfs_close: %s", cfs_strerror(rc));
    if ((rc = cfs_buf_unregister(ctx, buf)) < 0) die("cfs_buf_unregister: %s", cfs_strerror(rc));
    total += size;
  }
  snprintf(path, sizeof path, "%s/shared.dat", dir);
  expect_size(ctx, path, shared_size());
  int fh = cfs_open(ctx, path, O_RDONLY, 0, NULL);
  if (fh < 0) die("cfs_open(%s): %s", path, cfs_strerror(fh));
  size_t chunk = (2u << 20) - 4097;
  uint8_t* got = malloc(chunk);
  uint8_t* want = malloc(chunk);
  for (uint64_t off = 0, i = 0; off < shared_size(); off += chunk, i++) {
    size_t len = shared_size() - off < chunk ? (size_t)(shared_size() - off) : chunk;
    memset(got, 0x5A, len);
    int64_t n;
    if (i % 2 == 0) {
      n = cfs_pread(ctx, fh, got, len, off);
    } else {
      struct iovec iov[2] = {{got, len / 2}, {got + len / 2, len - len / 2}};
      n = cfs_preadv(ctx, fh, iov, 2, off);
    }
    if (n != (int64_t)len) die("%s: read at %" PRIu64 ": %" PRId64, path, off, n);
    fill(want, len, seed_of(step, SHARED_SEED_RANK), off);
    compare(got, want, len, off, path);
  }
  uint8_t extra;
  if (cfs_pread(ctx, fh, &extra, 1, shared_size()) != 0) die("%s: data past its end", path);
  free(got);
  free(want);
  cfs_close(ctx, fh);
  total += shared_size();
  ok("%s: all %d files verified byte for byte (%.1f MiB)", set, NRANKS + 1, total / 1048576.0);
  return total;
}

static int find_info(const cfs_ckpt_info* l, int n, const char* name) {
  for (int i = 0; i < n; i++)
    if (strcmp(l[i].name, name) == 0) return i;
  return -1;
}

static void expect_rc(int64_t rc, int want, const char* what) {
  if (rc != want) die("%s: got %" PRId64 " (%s), expected %d (%s)", what, rc, cfs_strerror((int)rc), want, cfs_strerror(want));
}

/* Bad inputs from C: clear codes, no crash. */
static void check_bad_inputs(cfs_ctx* ctx) {
  char b[16];
  expect_rc(cfs_pread(ctx, 4242, b, sizeof b, 0), -EBADF, "cfs_pread on an unknown handle");
  expect_rc(cfs_pwrite(ctx, -1, b, sizeof b, 0), -EBADF, "cfs_pwrite on handle -1");
  expect_rc(cfs_close(ctx, 4242), -EBADF, "cfs_close of an unknown handle");
  expect_rc(cfs_fsync(ctx, 4242), -EBADF, "cfs_fsync of an unknown handle");

  int fh = cfs_open(ctx, "/ckpt_ranks_bad_input", O_RDWR | O_CREAT | O_TRUNC, 0644, NULL);
  if (fh < 0) die("cfs_open: %s", cfs_strerror(fh));
  expect_rc(cfs_pwrite(ctx, fh, b, sizeof b, (uint64_t)1 << 63), -EFBIG, "cfs_pwrite at 2^63");
  void* mem = NULL;
  int buf = cfs_buf_alloc(ctx, 1 << 20, &mem);
  if (buf < 0) die("cfs_buf_alloc: %s", cfs_strerror(buf));
  cfs_ioq* q = NULL;
  int rc = cfs_ioq_create(ctx, NULL, &q);
  if (rc < 0) die("cfs_ioq_create: %s", cfs_strerror(rc));
  static char unregistered[4096];
  cfs_iocb cb = {.op = CFS_IO_WRITE, .fh = fh, .buf = buf, .addr = unregistered, .len = sizeof unregistered};
  expect_rc(cfs_ioq_submit(q, &cb, 1), -CFS_ENOTREG, "submit from memory outside the buffer");
  cb.addr = (char*)mem + (1 << 20) - 100; /* runs past the end of the buffer */
  cb.len = 200;
  expect_rc(cfs_ioq_submit(q, &cb, 1), -CFS_ENOTREG, "submit running past the buffer's end");
  cb.buf = 777;
  cb.addr = mem;
  expect_rc(cfs_ioq_submit(q, &cb, 1), -CFS_ENOTREG, "submit with an unknown buffer id");
  cb.buf = buf;
  cb.fh = 4242;
  expect_rc(cfs_ioq_submit(q, &cb, 1), -EBADF, "submit on an unknown handle");
  /* A good request then a bad one: the good one is accepted, the bad one
   * reported by the next submit starting at it. */
  cfs_iocb two[2] = {{.op = CFS_IO_WRITE, .fh = fh, .buf = buf, .addr = mem, .len = 4096, .user_data = 1},
                     {.op = CFS_IO_WRITE, .fh = fh, .buf = 777, .addr = mem, .len = 4096, .user_data = 2}};
  memset(mem, 0x3C, 4096);
  expect_rc(cfs_ioq_submit(q, two, 2), 1, "submit of a good and a bad request");
  expect_rc(cfs_ioq_submit(q, two + 1, 1), -CFS_ENOTREG, "resubmit of the bad request");
  cfs_ioevent ev;
  expect_rc(cfs_ioq_reap(q, &ev, 1, 1, 60000), 1, "reap of the good request");
  if (ev.user_data != 1 || ev.res != 4096) die("good request completion: %" PRIu64 " %" PRId64, ev.user_data, ev.res);
  expect_rc(cfs_buf_unregister(ctx, 777), -CFS_ENOTREG, "cfs_buf_unregister of an unknown id");
  cfs_ioq_destroy(q);
  expect_rc(cfs_buf_unregister(ctx, buf), 0, "cfs_buf_unregister");
  expect_rc(cfs_buf_unregister(ctx, buf), -CFS_ENOTREG, "cfs_buf_unregister twice");
  cfs_close(ctx, fh);
  cfs_unlink(ctx, "/ckpt_ranks_bad_input");

  expect_rc(cfs_ckpt_commit(ctx, JOB "/step-1"), -CFS_ECOMMITTED, "commit of committed step-1");
  char dir[4096];
  expect_rc(cfs_ckpt_begin(ctx, JOB "/step-1", dir, sizeof dir), -CFS_ECOMMITTED, "begin of committed step-1");
  expect_rc(cfs_ckpt_latest(ctx, "no_such_job", dir, sizeof dir), -ENOENT, "latest of a job that does not exist");
  expect_rc(cfs_ckpt_latest(ctx, JOB, dir, 3), -ERANGE, "latest into 3 bytes");
  expect_rc(cfs_ckpt_begin(ctx, JOB "/.hidden", dir, sizeof dir), -EINVAL, "begin of a name starting with '.'");

  /* cfs_strerror: every CFS code has its own non-empty text, either sign. */
  const int codes[] = {CFS_ENOTREG, CFS_ECOMMITTED, CFS_ENOTMOUNT, CFS_ECKPTBUSY};
  const char* unknown = cfs_strerror(CFS_ERRNO_BASE + 999);
  for (int i = 0; i < 4; i++) {
    const char* s = cfs_strerror(-codes[i]);
    if (!s || !*s) die("cfs_strerror(%d) is empty", -codes[i]);
    if (strcmp(s, cfs_strerror(codes[i])) != 0) die("cfs_strerror(%d) depends on the sign", codes[i]);
    if (unknown && strcmp(s, unknown) == 0) die("cfs_strerror(%d) is the unknown-code text \"%s\"", codes[i], s);
    if (strcmp(s, cfs_strerror(-EIO)) == 0 || strcmp(s, cfs_strerror(-EINVAL)) == 0)
      die("cfs_strerror(%d) is an errno text \"%s\"", codes[i], s);
    for (int j = 0; j < i; j++)
      if (strcmp(s, cfs_strerror(codes[j])) == 0) die("cfs_strerror(%d) == cfs_strerror(%d): \"%s\"", codes[i], codes[j], s);
    ok("cfs_strerror(-%d) = \"%s\"", codes[i], s);
  }
  ok("bad inputs give their documented errors");
}

/* The restart process of step 3: latest is step-1, fully intact. */
static void restart_main(void) {
  snprintf(g_who, sizeof g_who, "restart");
  cfs_ctx* ctx = mount_or_die();
  char name[256];
  int rc = cfs_ckpt_latest(ctx, JOB, name, sizeof name);
  if (rc < 0) die("cfs_ckpt_latest: %s", cfs_strerror(rc));
  if (strcmp(name, "step-1") != 0) die("cfs_ckpt_latest is \"%s\", expected step-1 (step-2 was never committed)", name);
  ok("cfs_ckpt_latest(%s) = %s", JOB, name);
  uint64_t bytes = verify_step(ctx, 1);

  cfs_ckpt_info l[8];
  int n = cfs_ckpt_list(ctx, JOB, l, 8);
  if (n != 2) die("cfs_ckpt_list: %d sets, expected 2 (step-1 committed, step-2 pending)", n);
  int i1 = find_info(l, n, "step-1"), i2 = find_info(l, n, "step-2");
  if (i1 != 0 || i2 != 1) die("cfs_ckpt_list order: step-1 at %d, step-2 at %d", i1, i2);
  if (l[0].state != CFS_CKPT_COMMITTED || l[0].seq == 0 || l[0].commit_ns <= 0)
    die("step-1 listed state %u seq %" PRIu64 " commit_ns %" PRId64, l[0].state, l[0].seq, l[0].commit_ns);
  if (l[0].files != NRANKS + 1 || l[0].bytes != bytes)
    die("step-1 listed %" PRIu64 " files %" PRIu64 " bytes, expected %d and %" PRIu64, l[0].files, l[0].bytes, NRANKS + 1, bytes);
  if (l[1].state != CFS_CKPT_PENDING || l[1].seq != 0) die("step-2 listed state %u seq %" PRIu64 ", expected pending", l[1].state, l[1].seq);
  ok("cfs_ckpt_list: step-1 committed (seq %" PRIu64 ", %" PRIu64 " files), step-2 pending (%" PRIu64 " files so far)",
     l[0].seq, l[0].files, l[1].files);
  char dir[4096];
  expect_rc(cfs_ckpt_path(ctx, JOB "/step-2", dir, sizeof dir), -ENOENT, "cfs_ckpt_path of pending step-2");

  check_bad_inputs(ctx);

  /* Resume from scratch: the torn step-2 goes away. */
  if ((rc = cfs_ckpt_remove(ctx, JOB "/step-2")) < 0) die("cfs_ckpt_remove(step-2): %s", cfs_strerror(rc));
  n = cfs_ckpt_list(ctx, JOB, l, 8);
  if (n != 1 || strcmp(l[0].name, "step-1") != 0) die("after removing step-2, cfs_ckpt_list has %d sets", n);
  if ((rc = cfs_unmount(ctx)) < 0) die("cfs_unmount: %s", cfs_strerror(rc));
  exit(0);
}

static void final_main(void) {
  snprintf(g_who, sizeof g_who, "final check");
  cfs_ctx* ctx = mount_or_die();
  char name[256];
  int rc = cfs_ckpt_latest(ctx, JOB, name, sizeof name);
  if (rc < 0) die("cfs_ckpt_latest: %s", cfs_strerror(rc));
  if (strcmp(name, "step-2") != 0) die("cfs_ckpt_latest is \"%s\", expected step-2", name);
  uint64_t bytes2 = verify_step(ctx, 2);
  verify_step(ctx, 1); /* still intact (retention keeps all) */
  cfs_ckpt_info l[8];
  int n = cfs_ckpt_list(ctx, JOB, l, 8);
  if (n != 2 || strcmp(l[0].name, "step-1") || strcmp(l[1].name, "step-2")) die("cfs_ckpt_list: %d sets", n);
  if (l[1].state != CFS_CKPT_COMMITTED || l[1].seq <= l[0].seq || l[1].files != NRANKS + 1 || l[1].bytes != bytes2)
    die("step-2 listed state %u seq %" PRIu64 " (step-1 %" PRIu64 ") files %" PRIu64 " bytes %" PRIu64, l[1].state,
        l[1].seq, l[0].seq, l[1].files, l[1].bytes);
  expect_rc(cfs_ckpt_commit(ctx, JOB "/step-2"), -CFS_ECOMMITTED, "second commit of step-2");
  if ((rc = cfs_unmount(ctx)) < 0) die("cfs_unmount: %s", cfs_strerror(rc));
  exit(0);
}

/* Runs fn in a fresh process; dies if it fails. */
static void in_child(void (*fn)(void), const char* what) {
  fflush(stdout);
  pid_t p = fork();
  if (p < 0) die("fork: %s", strerror(errno));
  if (p == 0) fn();
  int st;
  if (waitpid(p, &st, 0) < 0) die("waitpid: %s", strerror(errno));
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) die("%s failed (status 0x%x)", what, st);
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s HOST:PORT\n", argv[0]);
    return 2;
  }
  g_cluster = argv[1];
  setvbuf(stdout, NULL, _IOLBF, 0);
  alarm(540); /* a hang becomes a failure with a message (SIGALRM kills us) */
  ok("libcfs %s, cluster %s, %d ranks", cfs_version(), g_cluster, NRANKS);

  if (run_step(1, 0) != 0) die("step-1 failed");
  commit(1);

  if (run_step(2, 1) != 1) die("step-2: expected exactly the killed rank to fail");
  ok("step-2: a writer died, not committing");

  in_child(restart_main, "the restart process");
  ok("restart from step-1 verified; resuming step-2 from scratch");

  if (run_step(2, 0) != 0) die("resumed step-2 failed");
  commit(2);
  in_child(final_main, "the final check");
  ok("PASS");
  return 0;
}
