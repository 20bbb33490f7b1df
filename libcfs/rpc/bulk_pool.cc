#include "rpc/bulk_pool.h"

#include <cstdlib>

#include "rpc/size_class_cache.h"
#include "rpc/transport.h"

namespace cfs::rpc {

using Cache = SizeClassCache<char*>;
static_assert(Cache::Bytes(Cache::kMinClass) == kBulkAlignment);

struct BulkPool::Impl {
  explicit Impl(size_t budget) : cache(budget) {}
  Cache cache;
};

void BulkReturn::operator()(char* p) const {
  if (pool && cls >= 0) pool->Put(p, cls);
  else std::free(p);
}

BulkPool::BulkPool(size_t max_cached_bytes) : impl_(new Impl(max_cached_bytes)) {}

BulkPool::~BulkPool() {
  impl_->cache.Drain([](char* p) { std::free(p); });
}

BulkPool& BulkPool::Shared() {
  static BulkPool* pool = new BulkPool(64u << 20);
  return *pool;
}

BulkBuffer BulkPool::Get(size_t len) {
  const int cls = Cache::ClassOf(len);
  if (cls > Cache::kMaxClass) {
    const size_t rounded = (len + kBulkAlignment - 1) / kBulkAlignment * kBulkAlignment;
    return BulkBuffer(static_cast<char*>(std::aligned_alloc(kBulkAlignment, rounded)), BulkReturn{});
  }
  if (auto p = impl_->cache.Take(cls)) return BulkBuffer(*p, BulkReturn{this, cls});
  char* p = static_cast<char*>(std::aligned_alloc(kBulkAlignment, Cache::Bytes(cls)));
  return BulkBuffer(p, BulkReturn{p ? this : nullptr, p ? cls : -1});
}

void BulkPool::Put(char* p, int cls) {
  if (!impl_->cache.Keep(cls, p)) std::free(p);
}

size_t BulkPool::cached_bytes() const { return impl_->cache.cached(); }

}  // namespace cfs::rpc
