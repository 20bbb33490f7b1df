// The public C API (include/cfs/cfs.h) on top of cfs::client::Client: a
// handle table per context, path resolution, negative errno returns. Only
// cfs_* symbols leave libcfs.so (libcfs.map).
#include "cfs/cfs.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <string>

#include "capi/capi_internal.h"
#include "client/client.h"
#include "client/mount_table.h"


using cfs::Status;
using cfs::capi::Err;
using cfs::capi::GetHandle;
using cfs::capi::Guard;
using cfs::client::Client;
using cfs::client::File;

namespace {

void FillStat(const cfs::pb::Attr& a, struct cfs_stat* st) {
  std::memset(st, 0, sizeof *st);
  st->ino = a.ino();
  st->mode = a.mode();
  st->uid = a.uid();
  st->gid = a.gid();
  st->nlink = a.nlink();
  st->size = a.size();
  st->atime_ns = a.atime_ns();
  st->mtime_ns = a.mtime_ns();
  st->ctime_ns = a.ctime_ns();
  st->layout.unit = a.layout().unit();
  st->layout.k = a.layout().k();
  st->layout.m = a.layout().m();
}

bool BadArgs(cfs_ctx* ctx, const char* path) { return ctx == nullptr || path == nullptr; }

}  // namespace

#define CFS_STR_INNER(x) #x
#define CFS_STR(x) CFS_STR_INNER(x)

CFS_EXPORT const char* cfs_version(void) {
  return CFS_STR(CFS_VERSION_MAJOR) "." CFS_STR(CFS_VERSION_MINOR) "." CFS_STR(CFS_VERSION_PATCH);
}

CFS_EXPORT const char* cfs_strerror(int err) {
  if (err < 0) err = -err;
  if (err == 0) return "Success";
  switch (err) {
    case CFS_ENOTREG:
      return "Buffer not registered (the range is not inside a buffer from cfs_buf_register)";
    case CFS_ECOMMITTED:
      return "Checkpoint set already committed";
    case CFS_ENOTMOUNT:
      return "Not on a cfs mount";
    case CFS_ECKPTBUSY:
      return "Checkpoint set has files still open for writing";
    default:
      break;
  }
  return strerrordesc_np(err) ? strerrordesc_np(err) : "Unknown error";
}

namespace {

// "HOST:PORT[,...]" as given, the cluster of the cfs mount holding an
// absolute local path, or CFS_CLUSTER when NULL.
int ClusterAddress(const char* cluster, std::string* out) {
  if (!cluster) {
    const char* env = std::getenv("CFS_CLUSTER");
    if (!env || !*env) return -EINVAL;
    cluster = env;
  }
  if (cluster[0] != '/') {
    *out = cluster;
    return 0;
  }
  std::string rel;
  auto m = cfs::client::MountOfPath(cluster, &rel);
  if (!m.ok()) return -CFS_ENOTMOUNT;
  *out = m->source;
  return 0;
}

// Waits until no asynchronous request uses the handle.
void WaitIdle(const cfs_ctx::Handle& h) {
  for (int v = h.inflight->load(); v != 0; v = h.inflight->load()) h.inflight->wait(v);
}

}  // namespace

CFS_EXPORT int cfs_mount(const char* cluster, const char* options, cfs_ctx** out) {
  if (!out) return -EINVAL;
  return Guard([&]() -> int {
    std::string addr;
    if (int rc = ClusterAddress(cluster, &addr); rc < 0) return rc;
    auto opts = cfs::client::ClientOptions::Parse(addr, options ? options : "");
    if (!opts.ok()) return Err(opts.status());
    auto c = Client::Connect(*opts);
    if (!c.ok()) return Err(c.status());
    auto* ctx = new cfs_ctx;
    ctx->client = std::move(*c);
    *out = ctx;
    return 0;
  });
}

CFS_EXPORT int cfs_unmount(cfs_ctx* ctx) {
  if (!ctx) return -EINVAL;
  return Guard([&]() -> int {
    int rc = 0;
    std::map<int, cfs_ctx::Handle> handles;
    {
      std::lock_guard<std::mutex> g(ctx->mu);
      handles.swap(ctx->handles);
    }
    for (auto& [fh, h] : handles) {
      WaitIdle(h);
      int r = Err(ctx->client->Release(h.file));
      if (rc == 0) rc = r;
    }
    delete ctx;
    return rc;
  });
}

CFS_EXPORT int cfs_open(cfs_ctx* ctx, const char* path, int flags, uint32_t mode,
                        const cfs_layout* hint) {
  if (BadArgs(ctx, path)) return -EINVAL;
  return Guard([&]() -> int {
    const int acc = flags & O_ACCMODE;
    if (acc != O_RDONLY && acc != O_WRONLY && acc != O_RDWR) return -EINVAL;
    std::shared_ptr<File> f;
    cfs::pb::Attr attr;
    if (flags & O_CREAT) {
      auto parent = ctx->client->ResolveParent(path);
      if (!parent.ok()) return Err(parent.status());
      cfs::client::LayoutHint h;
      if (hint) h = {hint->unit, hint->k, hint->m};
      auto r = ctx->client->Create(parent->first, parent->second, mode & 07777, getuid(), getgid(),
                                   (flags & O_EXCL) != 0, h, &attr);
      if (!r.ok()) return Err(r.status());
      f = std::move(*r);
    } else {
      auto a = ctx->client->Resolve(path);
      if (!a.ok()) return Err(a.status());
      if (S_ISDIR(a->mode())) return -EISDIR;
      if (!S_ISREG(a->mode())) return -EINVAL;
      auto r = ctx->client->Open(a->ino(), static_cast<uint32_t>(flags), &attr);
      if (!r.ok()) return Err(r.status());
      f = std::move(*r);
    }
    if ((flags & O_TRUNC) && acc != O_RDONLY && f->size() > 0) {
      Status st = f->Truncate(0);
      if (!st.ok()) {
        ctx->client->Release(f);
        return Err(st);
      }
    }
    std::lock_guard<std::mutex> g(ctx->mu);
    // Smallest free handle >= 0, like file descriptors (bounded by INT_MAX).
    int fh = ctx->next_fh;
    while (ctx->handles.count(fh)) fh = fh == INT32_MAX ? 0 : fh + 1;
    ctx->next_fh = fh == INT32_MAX ? 0 : fh + 1;
    ctx->handles[fh] = {std::move(f), flags};
    return fh;
  });
}

CFS_EXPORT int cfs_close(cfs_ctx* ctx, int fh) {
  if (!ctx) return -EINVAL;
  return Guard([&]() -> int {
    cfs_ctx::Handle h;
    {
      std::lock_guard<std::mutex> g(ctx->mu);
      auto it = ctx->handles.find(fh);
      if (it == ctx->handles.end()) return -EBADF;
      h = std::move(it->second);
      ctx->handles.erase(it);
    }
    WaitIdle(h);
    return Err(ctx->client->Release(h.file));
  });
}

CFS_EXPORT int64_t cfs_pread(cfs_ctx* ctx, int fh, void* buf, size_t len, uint64_t off) {
  if (!ctx || (!buf && len)) return -EINVAL;
  return Guard([&]() -> int64_t {
    cfs_ctx::Handle h;
    if (!GetHandle(ctx, fh, &h)) return -EBADF;
    if ((h.flags & O_ACCMODE) == O_WRONLY) return -EBADF;
    if (off > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
    len = std::min<size_t>(len, size_t{1} << 30);  // keeps the count in int64 and memory bounded
    auto r = h.file->Read(buf, len, off);
    if (!r.ok()) return Err(r.status());
    return static_cast<int64_t>(*r);
  });
}

CFS_EXPORT int64_t cfs_pwrite(cfs_ctx* ctx, int fh, const void* buf, size_t len, uint64_t off) {
  if (!ctx || (!buf && len)) return -EINVAL;
  return Guard([&]() -> int64_t {
    cfs_ctx::Handle h;
    if (!GetHandle(ctx, fh, &h)) return -EBADF;
    if ((h.flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    if (h.flags & O_APPEND) off = h.file->size();
    if (off > static_cast<uint64_t>(INT64_MAX) || len > static_cast<uint64_t>(INT64_MAX) - off)
      return -EFBIG;
    auto r = h.file->Write(buf, len, off);
    if (!r.ok()) return Err(r.status());
    return static_cast<int64_t>(*r);
  });
}

namespace {

// Checks an iovec array and returns its total length (or a negative error).
int64_t IovTotal(const struct iovec* iov, int iovcnt) {
  if (iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt > 0)) return -EINVAL;
  uint64_t total = 0;
  for (int i = 0; i < iovcnt; i++) {
    if (!iov[i].iov_base && iov[i].iov_len) return -EINVAL;
    total += iov[i].iov_len;
    if (total > static_cast<uint64_t>(INT64_MAX)) return -EINVAL;
  }
  return static_cast<int64_t>(total);
}

}  // namespace

namespace {

// cfs_preadv/cfs_pwritev: one call of `one` (cfs_pread or cfs_pwrite) per
// piece at consecutive offsets; stops at a short read (end of file). The
// file's write buffer gathers written pieces into whole stripes.
template <class Buf, class One>
int64_t Vectored(cfs_ctx* ctx, int fh, const struct iovec* iov, int iovcnt, uint64_t off, One one) {
  int64_t total = IovTotal(iov, iovcnt);
  if (!ctx || total < 0) return total < 0 ? total : -EINVAL;
  int64_t done = 0;
  for (int i = 0; i < iovcnt; i++) {
    if (iov[i].iov_len == 0) continue;
    int64_t n = one(ctx, fh, static_cast<Buf>(iov[i].iov_base), iov[i].iov_len,
                    off + static_cast<uint64_t>(done));
    if (n < 0) return done > 0 ? done : n;
    done += n;
    if (static_cast<size_t>(n) < iov[i].iov_len) break;
  }
  return done;
}

}  // namespace

CFS_EXPORT int64_t cfs_preadv(cfs_ctx* ctx, int fh, const struct iovec* iov, int iovcnt,
                              uint64_t off) {
  return Vectored<void*>(ctx, fh, iov, iovcnt, off, cfs_pread);
}

CFS_EXPORT int64_t cfs_pwritev(cfs_ctx* ctx, int fh, const struct iovec* iov, int iovcnt,
                               uint64_t off) {
  return Vectored<const void*>(ctx, fh, iov, iovcnt, off, cfs_pwrite);
}

CFS_EXPORT int cfs_fsync(cfs_ctx* ctx, int fh) {
  if (!ctx) return -EINVAL;
  return Guard([&]() -> int {
    cfs_ctx::Handle h;
    if (!GetHandle(ctx, fh, &h)) return -EBADF;
    return Err(h.file->Fsync());
  });
}

CFS_EXPORT int cfs_fstat(cfs_ctx* ctx, int fh, struct cfs_stat* st) {
  if (!ctx || !st) return -EINVAL;
  return Guard([&]() -> int {
    cfs_ctx::Handle h;
    if (!GetHandle(ctx, fh, &h)) return -EBADF;
    auto a = ctx->client->GetAttr(h.file->ino());
    if (!a.ok()) return Err(a.status());
    FillStat(*a, st);
    return 0;
  });
}

CFS_EXPORT int cfs_ftruncate(cfs_ctx* ctx, int fh, uint64_t size) {
  if (!ctx) return -EINVAL;
  return Guard([&]() -> int {
    cfs_ctx::Handle h;
    if (!GetHandle(ctx, fh, &h)) return -EBADF;
    if ((h.flags & O_ACCMODE) == O_RDONLY) return -EBADF;
    if (size > static_cast<uint64_t>(INT64_MAX)) return -EFBIG;
    return Err(h.file->Truncate(size));
  });
}

CFS_EXPORT int cfs_stat(cfs_ctx* ctx, const char* path, struct cfs_stat* st) {
  if (BadArgs(ctx, path) || !st) return -EINVAL;
  return Guard([&]() -> int {
    auto a = ctx->client->Resolve(path);
    if (!a.ok()) return Err(a.status());
    FillStat(*a, st);
    return 0;
  });
}

CFS_EXPORT int cfs_mkdir(cfs_ctx* ctx, const char* path, uint32_t mode) {
  if (BadArgs(ctx, path)) return -EINVAL;
  return Guard([&]() -> int {
    auto p = ctx->client->ResolveParent(path);
    if (!p.ok()) return Err(p.status());
    return Err(ctx->client->Mkdir(p->first, p->second, mode & 07777, getuid(), getgid()).status());
  });
}

CFS_EXPORT int cfs_rmdir(cfs_ctx* ctx, const char* path) {
  if (BadArgs(ctx, path)) return -EINVAL;
  return Guard([&]() -> int {
    auto p = ctx->client->ResolveParent(path);
    if (!p.ok()) return Err(p.status());
    return Err(ctx->client->Rmdir(p->first, p->second));
  });
}

CFS_EXPORT int cfs_unlink(cfs_ctx* ctx, const char* path) {
  if (BadArgs(ctx, path)) return -EINVAL;
  return Guard([&]() -> int {
    auto p = ctx->client->ResolveParent(path);
    if (!p.ok()) return Err(p.status());
    return Err(ctx->client->Unlink(p->first, p->second));
  });
}

CFS_EXPORT int cfs_rename(cfs_ctx* ctx, const char* from, const char* to) {
  if (BadArgs(ctx, from) || !to) return -EINVAL;
  return Guard([&]() -> int {
    auto a = ctx->client->ResolveParent(from);
    if (!a.ok()) return Err(a.status());
    auto b = ctx->client->ResolveParent(to);
    if (!b.ok()) return Err(b.status());
    return Err(ctx->client->Rename(a->first, a->second, b->first, b->second, 0));
  });
}

CFS_EXPORT int cfs_truncate(cfs_ctx* ctx, const char* path, uint64_t size) {
  if (BadArgs(ctx, path)) return -EINVAL;
  return Guard([&]() -> int {
    if (size > static_cast<uint64_t>(INT64_MAX)) return -EFBIG;
    auto a = ctx->client->Resolve(path);
    if (!a.ok()) return Err(a.status());
    if (S_ISDIR(a->mode())) return -EISDIR;
    cfs::pb::SetattrRequest req;
    req.set_ino(a->ino());
    req.set_valid(cfs::pb::SETATTR_SIZE);
    req.set_size(size);
    return Err(ctx->client->SetAttr(req).status());
  });
}

CFS_EXPORT int cfs_readdir(cfs_ctx* ctx, const char* path, uint64_t* cookie, cfs_dirent* ents,
                           int max) {
  if (BadArgs(ctx, path) || !cookie || (!ents && max > 0) || max < 0) return -EINVAL;
  if (max == 0) return 0;
  return Guard([&]() -> int {
    auto a = ctx->client->Resolve(path);
    if (!a.ok()) return Err(a.status());
    if (!S_ISDIR(a->mode())) return -ENOTDIR;
    auto r = ctx->client->Readdir(a->ino(), *cookie, static_cast<uint32_t>(max), false);
    if (!r.ok()) return Err(r.status());
    int n = 0;
    for (const auto& e : r->entries()) {
      if (n == max) break;
      cfs_dirent& d = ents[n++];
      d.ino = e.ino();
      d.type = e.type();
      size_t len = std::min(e.name().size(), sizeof d.name - 1);
      std::memcpy(d.name, e.name().data(), len);
      d.name[len] = '\0';
      *cookie = e.cookie();
    }
    return n;
  });
}

CFS_EXPORT int cfs_setstripe(cfs_ctx* ctx, const char* path, const cfs_layout* layout) {
  if (BadArgs(ctx, path) || !layout) return -EINVAL;
  return Guard([&]() -> int {
    auto a = ctx->client->Resolve(path);
    if (!a.ok()) return Err(a.status());
    if (!S_ISDIR(a->mode())) return -ENOTDIR;
    return Err(ctx->client->SetDirLayout(a->ino(), {layout->unit, layout->k, layout->m}));
  });
}
