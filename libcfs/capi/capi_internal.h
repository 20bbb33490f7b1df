// What the C API's translation units share: the context behind cfs_ctx and
// the error/exception plumbing. Not installed; only libcfs.so sees it.
#pragma once

#include <atomic>
#include <cerrno>
#include <map>
#include <memory>
#include <mutex>
#include <new>

#include "capi/buffer_table.h"
#include "cfs/cfs.h"
#include "client/client.h"
#include "common/status.h"

#define CFS_EXPORT extern "C" __attribute__((visibility("default")))

struct cfs_ctx {
  std::unique_ptr<cfs::client::Client> client;
  std::mutex mu;  // the handle table only
  struct Handle {
    std::shared_ptr<cfs::client::File> file;
    int flags = 0;
    // Asynchronous requests in flight on this handle (close waits for them).
    std::shared_ptr<std::atomic<int>> inflight = std::make_shared<std::atomic<int>>(0);
  };
  std::map<int, Handle> handles;
  int next_fh = 0;
  std::unique_ptr<cfs::capi::BufferTable> buffers = std::make_unique<cfs::capi::BufferTable>();  // registered buffers (ioq_api.cc)
};

namespace cfs::capi {

inline int Err(const Status& st) { return st.ok() ? 0 : -(st.err() > 0 ? st.err() : EIO); }

// Runs fn, turning anything thrown (allocation failure) into -ENOMEM/-EIO:
// no exception crosses into C.
template <class F>
auto Guard(F fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::bad_alloc&) {
    return -ENOMEM;
  } catch (...) {
    return -EIO;
  }
}

inline bool GetHandle(cfs_ctx* ctx, int fh, cfs_ctx::Handle* out) {
  std::lock_guard<std::mutex> g(ctx->mu);
  auto it = ctx->handles.find(fh);
  if (it == ctx->handles.end()) return false;
  *out = it->second;
  return true;
}

}  // namespace cfs::capi
