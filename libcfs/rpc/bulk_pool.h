// BulkPool: page-aligned buffers that receive request bulk, reused across
// requests. Why: each fresh 1 MiB allocation is a fresh mmap, and faulting in,
// zeroing and unmapping its pages cost an S-worker about a sixth of its CPU at
// 500 MiB/s (perf, docs/benchmarks.md "Issue 4"). Buffers come in power-of-two
// size classes; freed ones are kept up to a byte budget and handed out again.
#pragma once

#include <cstddef>
#include <memory>

namespace cfs::rpc {

class BulkPool;

struct BulkReturn {
  BulkPool* pool = nullptr;
  int cls = -1;  // size class; -1 = not pooled (plain free)
  void operator()(char* p) const;
};
using BulkBuffer = std::unique_ptr<char, BulkReturn>;

class BulkPool {
 public:
  // Buffers kept for reuse total at most max_cached_bytes.
  explicit BulkPool(size_t max_cached_bytes);
  ~BulkPool();
  BulkPool(const BulkPool&) = delete;
  BulkPool& operator=(const BulkPool&) = delete;

  // The process-wide pool (never destroyed, so buffers may outlive servers).
  static BulkPool& Shared();

  // A buffer of at least len bytes (len > 0) starting at a kBulkAlignment
  // boundary; null when memory is exhausted.
  BulkBuffer Get(size_t len);
  size_t cached_bytes() const;

 private:
  friend struct BulkReturn;
  void Put(char* p, int cls);
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cfs::rpc
