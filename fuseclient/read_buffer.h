// The buffer a FUSE loop thread reads file data into before replying. It is
// kept for the thread's life and announced to the transport once
// (rpc::RegisterMemory), so over RDMA the S-workers WRITE into memory that is
// already registered instead of the client registering and deregistering a
// buffer for every read (docs/rdma.md, "Registrations"). Over TCP the
// announcement costs nothing.
#pragma once

#include <cstddef>
#include <cstdlib>

#include "rpc/rdma_transport.h"

namespace cfs::fuse {

class ReadBuffer {
 public:
  ReadBuffer() = default;
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;
  ~ReadBuffer() { Release(); }

  // At least size bytes; null when memory is exhausted. Grows in whole MiB,
  // never shrinks.
  char* Get(size_t size) {
    if (size <= cap_ && data_) return data_;
    Release();
    constexpr size_t kStep = size_t{1} << 20;
    const size_t cap = (size / kStep + 1) * kStep;  // 0 bytes too: aligned_alloc(0) may fail
    data_ = static_cast<char*>(std::aligned_alloc(4096, cap));
    if (!data_) return nullptr;
    cap_ = cap;
    rpc::RegisterMemory(data_, cap_);
    return data_;
  }

 private:
  void Release() {
    if (!data_) return;
    rpc::UnregisterMemory(data_);
    std::free(data_);
    data_ = nullptr;
    cap_ = 0;
  }
  char* data_ = nullptr;
  size_t cap_ = 0;
};

}  // namespace cfs::fuse
