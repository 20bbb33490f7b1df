// SizeClassCache: freed buffers kept by power-of-two size class (4 KiB to
// 64 MiB) up to a byte budget, so that a stream of requests reuses memory
// instead of mapping fresh pages each time. Shared by the pool of request
// bulk (bulk_pool.h) and the pool of registered RDMA buffers (rdma_verbs.h).
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <mutex>
#include <optional>
#include <vector>

namespace cfs::rpc {

template <class Item>
class SizeClassCache {
 public:
  static constexpr int kMinClass = 12;  // 4 KiB, the bulk alignment
  static constexpr int kMaxClass = 26;  // 64 MiB; larger buffers are not kept

  // The class of a buffer of len bytes; above kMaxClass it is not kept.
  static constexpr int ClassOf(size_t len) {
    return len <= (size_t{1} << kMinClass) ? kMinClass : static_cast<int>(std::bit_width(len - 1));
  }
  static constexpr size_t Bytes(int cls) { return size_t{1} << cls; }

  explicit SizeClassCache(size_t budget) : budget_(budget) {}

  // A kept buffer of class cls, if there is one.
  std::optional<Item> Take(int cls) {
    std::lock_guard<std::mutex> g(mu_);
    auto& list = free_[cls - kMinClass];
    if (list.empty()) return std::nullopt;
    Item item = list.back();
    list.pop_back();
    cached_ -= Bytes(cls);
    return item;
  }
  // Keeps item for reuse; false when over budget or too large (the caller frees it).
  bool Keep(int cls, Item item) {
    if (cls > kMaxClass) return false;
    std::lock_guard<std::mutex> g(mu_);
    if (cached_ + Bytes(cls) > budget_) return false;
    free_[cls - kMinClass].push_back(item);
    cached_ += Bytes(cls);
    return true;
  }
  size_t cached() const {
    std::lock_guard<std::mutex> g(mu_);
    return cached_;
  }
  // Hands every kept buffer to release (on destruction of the owner).
  template <class F>
  void Drain(F release) {
    std::lock_guard<std::mutex> g(mu_);
    for (auto& list : free_)
      for (Item& item : list) release(item);
    free_ = {};
    cached_ = 0;
  }

 private:
  const size_t budget_;
  mutable std::mutex mu_;
  size_t cached_ = 0;
  std::array<std::vector<Item>, kMaxClass - kMinClass + 1> free_;
};

}  // namespace cfs::rpc
