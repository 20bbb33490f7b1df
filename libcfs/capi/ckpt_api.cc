// cfs_ckpt_*: checkpoint sets through the C API, on client/checkpoint.h (the
// same code `cfs ckpt` runs). Only the handle table check is C API specific.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <set>
#include <string>

#include "capi/capi_internal.h"
#include "client/checkpoint.h"

using cfs::capi::Err;
using cfs::capi::Guard;
using cfs::client::Checkpoints;

static_assert(cfs::client::kErrCkptCommitted == CFS_ECOMMITTED);
static_assert(cfs::client::kErrCkptBusy == CFS_ECKPTBUSY);

namespace {

Checkpoints Ckpt(cfs_ctx* ctx) { return Checkpoints(ctx->client.get(), getuid(), getgid()); }

// Copies s with its NUL into out[cap]; -ERANGE if it does not fit.
int CopyOut(const std::string& s, char* out, size_t cap) {
  if (s.size() + 1 > cap) return -ERANGE;
  std::memcpy(out, s.c_str(), s.size() + 1);
  return 0;
}

}  // namespace

CFS_EXPORT int cfs_ckpt_begin(cfs_ctx* ctx, const char* set, char* dir, size_t cap) {
  if (!ctx || !set || !dir) return -EINVAL;
  return Guard([&]() -> int {
    // The directory's length is known before anything is created.
    auto name = cfs::client::ParseCkptSet(set);
    if (!name.ok()) return Err(name.status());
    if (name->job.size() + name->name.size() + sizeof "/.pending/" > cap) return -ERANGE;
    auto r = Ckpt(ctx).Begin(set);
    if (!r.ok()) return Err(r.status());
    return CopyOut(*r, dir, cap);
  });
}

CFS_EXPORT int cfs_ckpt_commit(cfs_ctx* ctx, const char* set) {
  if (!ctx || !set) return -EINVAL;
  return Guard([&]() -> int {
    std::set<uint64_t> writing;
    {
      std::lock_guard<std::mutex> g(ctx->mu);
      for (const auto& [fh, h] : ctx->handles)
        if ((h.flags & O_ACCMODE) != O_RDONLY) writing.insert(h.file->ino());
    }
    auto r = Ckpt(ctx).Commit(set, [&](uint64_t ino) { return writing.count(ino) > 0; });
    // A retention that stopped half way is not the commit's failure: the set
    // is committed, and the next commit retries the removal.
    return r.ok() ? 0 : Err(r.status());
  });
}

CFS_EXPORT int cfs_ckpt_latest(cfs_ctx* ctx, const char* job, char* name, size_t cap) {
  if (!ctx || !job || !name) return -EINVAL;
  return Guard([&]() -> int {
    auto r = Ckpt(ctx).Latest(job);
    if (!r.ok()) return Err(r.status());
    return CopyOut(r->name, name, cap);
  });
}

CFS_EXPORT int cfs_ckpt_path(cfs_ctx* ctx, const char* set, char* dir, size_t cap) {
  if (!ctx || !set || !dir) return -EINVAL;
  return Guard([&]() -> int {
    auto r = Ckpt(ctx).Path(set);
    if (!r.ok()) return Err(r.status());
    return CopyOut(*r, dir, cap);
  });
}

CFS_EXPORT int cfs_ckpt_remove(cfs_ctx* ctx, const char* set) {
  if (!ctx || !set) return -EINVAL;
  return Guard([&]() -> int { return Err(Ckpt(ctx).Remove(set)); });
}

CFS_EXPORT int cfs_ckpt_set_retention(cfs_ctx* ctx, const char* job, uint32_t keep) {
  if (!ctx || !job || keep > INT_MAX) return -EINVAL;
  return Guard([&]() -> int { return Err(Ckpt(ctx).SetRetention(job, keep)); });
}

CFS_EXPORT int cfs_ckpt_get_retention(cfs_ctx* ctx, const char* job) {
  if (!ctx || !job) return -EINVAL;
  return Guard([&]() -> int {
    auto r = Ckpt(ctx).GetRetention(job);
    if (!r.ok()) return Err(r.status());
    return static_cast<int>(std::min<uint32_t>(*r, INT_MAX));
  });
}

CFS_EXPORT int cfs_ckpt_list(cfs_ctx* ctx, const char* job, cfs_ckpt_info* out, int max) {
  if (!ctx || !job || max < 0 || (!out && max > 0)) return -EINVAL;
  return Guard([&]() -> int {
    auto r = Ckpt(ctx).List(job);
    if (!r.ok()) return Err(r.status());
    const auto& sets = *r;
    for (size_t i = 0; i < sets.size() && i < static_cast<size_t>(max); i++) {
      cfs_ckpt_info& o = out[i];
      std::memset(&o, 0, sizeof o);
      std::memcpy(o.name, sets[i].name.data(), std::min(sets[i].name.size(), sizeof o.name - 1));
      o.state = sets[i].committed ? CFS_CKPT_COMMITTED : CFS_CKPT_PENDING;
      o.seq = sets[i].seq;
      o.commit_ns = sets[i].commit_ns;
      o.files = sets[i].files;
      o.bytes = sets[i].bytes;
    }
    return static_cast<int>(std::min<size_t>(sets.size(), INT_MAX));
  });
}
