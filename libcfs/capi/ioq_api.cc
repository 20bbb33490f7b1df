// The asynchronous C API (cfs.h): registered buffers and I/O queues, on top
// of client::IoQueue. Every accepted request pins its buffer and its handle
// (in-flight counters) until its completion exists, so cfs_buf_unregister
// refuses and cfs_close waits instead of letting the data path touch freed
// memory or a released file.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "capi/buffer_table.h"
#include "capi/capi_internal.h"
#include "client/io_queue.h"

using cfs::capi::Guard;
using cfs::client::IoQueue;

struct cfs_ioq {
  cfs_ctx* ctx;
  std::unique_ptr<IoQueue> q;
  // Reap's scratch space, kept between calls (a queue has one user at a time).
  std::vector<IoQueue::Completion> reaped;
};

namespace {

constexpr size_t kMaxRequest = size_t{1} << 30;
constexpr size_t kHugePage = size_t{2} << 20;

// Checks one request and turns it into an IoQueue request that pins its
// buffer and handle. Returns 0 or a negative error.
int Prepare(cfs_ctx* ctx, const cfs_iocb& cb, IoQueue::Request* out) {
  if (cb.op != CFS_IO_READ && cb.op != CFS_IO_WRITE && cb.op != CFS_IO_FSYNC) return -EINVAL;
  cfs_ctx::Handle h;
  if (!cfs::capi::GetHandle(ctx, cb.fh, &h)) return -EBADF;
  const int acc = h.flags & O_ACCMODE;
  std::shared_ptr<cfs::capi::BufferTable::Buf> buf;
  uint64_t off = cb.off;
  if (cb.op != CFS_IO_FSYNC) {
    if (cb.op == CFS_IO_READ && acc == O_WRONLY) return -EBADF;
    if (cb.op == CFS_IO_WRITE && acc == O_RDONLY) return -EBADF;
    if (cb.len > kMaxRequest) return -EINVAL;
    if (!cb.addr) return -CFS_ENOTREG;
    buf = ctx->buffers->Find(cb.buf, cb.addr, cb.len);
    if (!buf) return -CFS_ENOTREG;
    if (cb.op == CFS_IO_WRITE && (h.flags & O_APPEND)) {
      off = h.file->ReserveAppend(cb.len);
    } else if (off > static_cast<uint64_t>(INT64_MAX) ||
               cb.len > static_cast<uint64_t>(INT64_MAX) - off) {
      return -EFBIG;
    }
  }
  out->op = cb.op == CFS_IO_READ    ? IoQueue::Op::kRead
            : cb.op == CFS_IO_WRITE ? IoQueue::Op::kWrite
                                    : IoQueue::Op::kFsync;
  out->file = h.file;
  out->buf = static_cast<char*>(cb.addr);
  out->len = cb.op == CFS_IO_FSYNC ? 0 : cb.len;
  out->off = off;
  out->user_data = cb.user_data;
  if (buf) buf->inflight++;
  h.inflight->fetch_add(1);
  out->done = [buf, inflight = h.inflight] {
    if (buf) buf->inflight--;
    if (inflight->fetch_sub(1) == 1) inflight->notify_all();
  };
  return 0;
}

}  // namespace

CFS_EXPORT int cfs_buf_register(cfs_ctx* ctx, void* addr, size_t len) {
  if (!ctx || !addr || len == 0) return -EINVAL;
  return Guard([&]() -> int {
    if (reinterpret_cast<uintptr_t>(addr) > UINTPTR_MAX - len) return -EINVAL;
    return ctx->buffers->Register(static_cast<char*>(addr), len, false, 0);
  });
}

CFS_EXPORT int cfs_buf_alloc(cfs_ctx* ctx, size_t len, void** addr) {
  if (!ctx || !addr || len == 0 || len > (size_t{1} << 40)) return -EINVAL;
  return Guard([&]() -> int {
    size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    size_t alloc = (len + page - 1) / page * page;
    void* p = mmap(nullptr, alloc, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -ENOMEM;
    // Transparent huge pages where the kernel allows: fewer TLB misses on the
    // large buffers checkpoints use (and fewer pages for RDMA to pin).
    if (alloc >= kHugePage) madvise(p, alloc, MADV_HUGEPAGE);
    int id = ctx->buffers->Register(static_cast<char*>(p), len, true, alloc);
    if (id < 0) {
      munmap(p, alloc);
      return id;
    }
    *addr = p;
    return id;
  });
}

CFS_EXPORT int cfs_buf_unregister(cfs_ctx* ctx, int buf) {
  if (!ctx) return -EINVAL;
  return Guard([&]() -> int { return ctx->buffers->Unregister(buf); });
}

CFS_EXPORT int cfs_ioq_create(cfs_ctx* ctx, const cfs_ioq_opts* opts, cfs_ioq** out) {
  if (!ctx || !out) return -EINVAL;
  uint32_t depth = opts && opts->depth ? opts->depth : 64;
  if (depth > 4096) return -EINVAL;
  uint32_t batch = opts && opts->batch ? opts->batch : std::min<uint32_t>(16, depth);
  if (batch > depth) return -EINVAL;
  return Guard([&]() -> int {
    auto q = IoQueue::Create(static_cast<int>(depth), static_cast<int>(batch));
    if (!q.ok()) return cfs::capi::Err(q.status());
    *out = new cfs_ioq{ctx, std::move(*q), {}};
    return 0;
  });
}

CFS_EXPORT int cfs_ioq_destroy(cfs_ioq* q) {
  if (!q) return -EINVAL;
  delete q;  // ~IoQueue waits for the requests in flight
  return 0;
}

CFS_EXPORT int cfs_ioq_submit(cfs_ioq* q, const cfs_iocb* cbs, int n) {
  if (!q || n < 0 || (!cbs && n > 0)) return -EINVAL;
  if (n == 0) return 0;
  return Guard([&]() -> int {
    int room = q->q->depth() - q->q->pending();
    if (room <= 0) return -EAGAIN;
    int take = std::min(n, room);
    std::vector<IoQueue::Request> reqs(static_cast<size_t>(take));
    int accepted = 0, err = 0;
    for (; accepted < take; accepted++) {
      err = Prepare(q->ctx, cbs[accepted], &reqs[static_cast<size_t>(accepted)]);
      if (err < 0) break;
    }
    reqs.resize(static_cast<size_t>(accepted));
    if (accepted > 0) q->q->Submit(std::move(reqs));
    return accepted > 0 ? accepted : err;
  });
}

CFS_EXPORT int cfs_ioq_reap(cfs_ioq* q, cfs_ioevent* evs, int min, int max, int timeout_ms) {
  if (!q || max < 0 || min < 0 || (!evs && max > 0)) return -EINVAL;
  if (max == 0) return 0;
  return Guard([&]() -> int {
    auto& c = q->reaped;
    if (c.size() < static_cast<size_t>(max)) c.resize(static_cast<size_t>(max));
    int n = q->q->Reap(c.data(), min, max, timeout_ms);
    for (int i = 0; i < n; i++) evs[i] = {c[i].user_data, c[i].res};
    return n;
  });
}

CFS_EXPORT int cfs_ioq_fd(cfs_ioq* q) { return q ? q->q->fd() : -EINVAL; }

CFS_EXPORT int cfs_ioq_pending(cfs_ioq* q) { return q ? q->q->pending() : -EINVAL; }
