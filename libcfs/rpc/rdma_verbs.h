// Verbs resources shared by every RDMA connection of a process: protection
// domains per device, memory registrations (cached for RegisterMemory ranges,
// per use otherwise), registered page-aligned buffers, counters, and the
// environment checks (devices, ports, RLIMIT_MEMLOCK). See rdma_transport.h.
#pragma once

#include <infiniband/verbs.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace cfs::rpc::rdma {

// The protection domain of a device context (made on first use, kept for the
// process's life, as contexts from rdma_cm are).
Result<ibv_pd*> PdFor(ibv_context* ctx);

// A registration held for one use: a range inside a RegisterMemory area
// (cached; the lease pins it against UnregisterMemory) or a registration of
// exactly this range, dropped when the lease ends.
class MrLease {
 public:
  MrLease() = default;
  MrLease(MrLease&& o) noexcept { *this = std::move(o); }
  MrLease& operator=(MrLease&& o) noexcept;
  ~MrLease() { Release(); }
  uint32_t lkey() const { return mr_->lkey; }
  uint32_t rkey() const { return mr_->rkey; }
  explicit operator bool() const { return mr_ != nullptr; }
  void Release();

 private:
  friend Result<MrLease> Lease(ibv_pd*, const void*, size_t, int);
  ibv_mr* mr_ = nullptr;
  void* cached_ = nullptr;  // the cache entry pinned, or null for an owned mr_
};

// A registration covering [addr, addr+len) on pd with at least `access`.
Result<MrLease> Lease(ibv_pd* pd, const void* addr, size_t len, int access);

// Bytes the RegisterMemory cache may keep registered (process-wide).
void SetCachedRegistrationLimit(size_t bytes);

// A registered, page-aligned buffer from a per-device pool (bulk landing
// zones on servers, reply staging). Returned to the pool when it ends.
class RegBuf {
 public:
  RegBuf() = default;
  RegBuf(RegBuf&& o) noexcept { *this = std::move(o); }
  RegBuf& operator=(RegBuf&& o) noexcept;
  ~RegBuf();
  char* data() const { return data_; }
  size_t capacity() const { return cap_; }
  uint32_t lkey() const { return mr_->lkey; }
  uint32_t rkey() const { return mr_->rkey; }
  explicit operator bool() const { return data_ != nullptr; }

 private:
  friend Result<RegBuf> GetRegBuf(ibv_pd*, size_t);
  char* data_ = nullptr;
  size_t cap_ = 0;
  ibv_mr* mr_ = nullptr;
  ibv_pd* pd_ = nullptr;
};

// A buffer of at least len bytes (len may be 0) registered on pd.
Result<RegBuf> GetRegBuf(ibv_pd* pd, size_t len);

// Process-wide counters (rdma_transport.h, RdmaCounters).
struct Counters {
  std::atomic<uint64_t> read_bytes{0}, write_bytes{0}, sends{0}, registrations{0}, staged_bytes{0};
  std::atomic<int64_t> one_use_live{0};
};
Counters& Stats();
size_t CachedRegistrations();

// ENODEV when no RDMA device exists (or `device` is not one of them), with the
// list of devices in the message.
Status CheckDevices(const std::string& device);
// OK when RLIMIT_MEMLOCK allows `need` bytes; otherwise says what to raise.
Status CheckMemlock(size_t need);
// OK when some port of some device (or of `device`) is ACTIVE.
Status CheckActivePort(const std::string& device);

}  // namespace cfs::rpc::rdma
