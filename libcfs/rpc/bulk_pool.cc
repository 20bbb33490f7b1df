#include "rpc/bulk_pool.h"

#include <bit>
#include <cstdlib>
#include <mutex>
#include <vector>

#include "rpc/transport.h"

namespace cfs::rpc {
namespace {

constexpr int kMinClass = 12;  // 4 KiB = kBulkAlignment
constexpr int kMaxClass = 26;  // 64 MiB; larger bulk is allocated and freed each time
static_assert((size_t{1} << kMinClass) == kBulkAlignment);

}  // namespace

struct BulkPool::Impl {
  size_t max_cached;
  mutable std::mutex mu;
  size_t cached = 0;
  std::vector<char*> free[kMaxClass + 1];
};

void BulkReturn::operator()(char* p) const {
  if (pool && cls >= 0) pool->Put(p, cls);
  else std::free(p);
}

BulkPool::BulkPool(size_t max_cached_bytes) : impl_(new Impl) { impl_->max_cached = max_cached_bytes; }

BulkPool::~BulkPool() {
  for (auto& list : impl_->free)
    for (char* p : list) std::free(p);
}

BulkPool& BulkPool::Shared() {
  static BulkPool* pool = new BulkPool(64u << 20);
  return *pool;
}

BulkBuffer BulkPool::Get(size_t len) {
  int cls = std::max(kMinClass, static_cast<int>(std::bit_width(len - 1)));
  if (len == 0) cls = kMinClass;
  if (cls > kMaxClass) {
    const size_t rounded = (len + kBulkAlignment - 1) / kBulkAlignment * kBulkAlignment;
    return BulkBuffer(static_cast<char*>(std::aligned_alloc(kBulkAlignment, rounded)), BulkReturn{});
  }
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    auto& list = impl_->free[cls];
    if (!list.empty()) {
      char* p = list.back();
      list.pop_back();
      impl_->cached -= size_t{1} << cls;
      return BulkBuffer(p, BulkReturn{this, cls});
    }
  }
  char* p = static_cast<char*>(std::aligned_alloc(kBulkAlignment, size_t{1} << cls));
  return BulkBuffer(p, BulkReturn{p ? this : nullptr, p ? cls : -1});
}

void BulkPool::Put(char* p, int cls) {
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    if (impl_->cached + (size_t{1} << cls) <= impl_->max_cached) {
      impl_->free[cls].push_back(p);
      impl_->cached += size_t{1} << cls;
      return;
    }
  }
  std::free(p);
}

size_t BulkPool::cached_bytes() const {
  std::lock_guard<std::mutex> g(impl_->mu);
  return impl_->cached;
}

}  // namespace cfs::rpc
