#include "capi/buffer_table.h"

#include <sys/mman.h>

#include <cerrno>

#include "cfs/cfs.h"
#include "rpc/rdma_transport.h"

namespace cfs::capi {

// Registered buffers are announced to the RDMA transport, which registers them
// with each device once and keeps the registration until they go.
BufferTable::~BufferTable() {
  for (auto& [id, b] : bufs_) {
    rpc::UnregisterMemory(b->addr);
    if (b->owned) munmap(b->addr, b->alloc_len);
  }
}

int BufferTable::Register(char* addr, size_t len, bool owned, size_t alloc_len) {
  std::lock_guard<std::mutex> g(mu_);
  for (auto& [id, b] : bufs_)
    if (addr < b->addr + b->len && b->addr < addr + len) return -EINVAL;
  while (bufs_.count(next_id_)) next_id_ = next_id_ == INT32_MAX ? 0 : next_id_ + 1;
  int id = next_id_;
  next_id_ = id == INT32_MAX ? 0 : id + 1;
  auto b = std::make_shared<Buf>();
  b->addr = addr;
  b->len = len;
  b->owned = owned;
  b->alloc_len = alloc_len;
  bufs_[id] = std::move(b);
  rpc::RegisterMemory(addr, len);
  return id;
}

int BufferTable::Unregister(int id) {
  std::shared_ptr<Buf> b;
  {
    std::lock_guard<std::mutex> g(mu_);
    auto it = bufs_.find(id);
    if (it == bufs_.end()) return -CFS_ENOTREG;
    if (it->second->inflight.load() > 0) return -EBUSY;
    b = std::move(it->second);
    bufs_.erase(it);
  }
  rpc::UnregisterMemory(b->addr);
  if (b->owned) munmap(b->addr, b->alloc_len);
  return 0;
}

std::shared_ptr<BufferTable::Buf> BufferTable::Find(int id, const void* addr, size_t len) {
  std::lock_guard<std::mutex> g(mu_);
  auto it = bufs_.find(id);
  if (it == bufs_.end()) return nullptr;
  const char* p = static_cast<const char*>(addr);
  const Buf& b = *it->second;
  if (p < b.addr || len > b.len || p - b.addr > static_cast<ptrdiff_t>(b.len - len)) return nullptr;
  return it->second;
}

}  // namespace cfs::capi
