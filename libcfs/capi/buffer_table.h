// Registered buffers of one context: id -> [addr, addr+len). Requests of the
// asynchronous API must lie inside one; the registration is what the RDMA
// transport will turn into a memory region, so looking it up is the one
// check a request's memory gets.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>

namespace cfs::capi {

class BufferTable {
 public:
  struct Buf {
    char* addr = nullptr;
    size_t len = 0;
    bool owned = false;    // from cfs_buf_alloc: freed at unregister
    size_t alloc_len = 0;  // mmap length when owned
    std::atomic<int> inflight{0};
  };

  ~BufferTable();
  // Returns the new id, or -EINVAL when the range overlaps a registered one.
  int Register(char* addr, size_t len, bool owned, size_t alloc_len);
  // 0, -EBUSY (requests in flight) or -CFS_ENOTREG.
  int Unregister(int id);
  // The buffer `id` if [addr, addr+len) lies inside it, else null. The
  // returned pointer stays valid while its inflight count is above zero.
  std::shared_ptr<Buf> Find(int id, const void* addr, size_t len);

 private:
  std::mutex mu_;
  std::map<int, std::shared_ptr<Buf>> bufs_;
  int next_id_ = 0;
};

}  // namespace cfs::capi
