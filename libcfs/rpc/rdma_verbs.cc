#include "rpc/rdma_verbs.h"

#include <sys/resource.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "rpc/rdma_transport.h"
#include "rpc/size_class_cache.h"

namespace cfs::rpc {
namespace rdma {
namespace {

constexpr int kAllAccess = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_READ | IBV_ACCESS_REMOTE_WRITE;

std::mutex& PdMu() {
  static std::mutex* m = new std::mutex;
  return *m;
}
std::unordered_map<ibv_context*, ibv_pd*>& Pds() {
  static auto* m = new std::unordered_map<ibv_context*, ibv_pd*>;
  return *m;
}

// ---- the RegisterMemory cache ----

struct Area {
  uintptr_t start = 0;
  size_t len = 0;
  std::unordered_map<ibv_pd*, ibv_mr*> mrs;
  int inuse = 0;
  int refs = 1;  // RegisterMemory calls (several contexts may announce one buffer)
};

struct Registry {
  std::mutex mu;
  std::condition_variable cv;
  std::map<uintptr_t, Area*> areas;  // by start
  size_t limit = size_t{1} << 30;
  size_t registered = 0;  // bytes of cached mrs (per pd)
};

Registry& Reg() {
  static Registry* r = new Registry;  // never destroyed: leases may outlive main
  return *r;
}

// ---- registered buffer pool: per protection domain, buffers stay registered ----

using RegCache = SizeClassCache<std::pair<char*, ibv_mr*>>;
constexpr size_t kPoolBudget = size_t{256} << 20;  // per protection domain

RegCache& CacheFor(ibv_pd* pd) {
  static std::mutex* mu = new std::mutex;
  static auto* caches = new std::unordered_map<ibv_pd*, std::unique_ptr<RegCache>>;
  std::lock_guard<std::mutex> g(*mu);
  auto& c = (*caches)[pd];
  if (!c) c = std::make_unique<RegCache>(kPoolBudget);
  return *c;
}

}  // namespace

Result<ibv_pd*> PdFor(ibv_context* ctx) {
  std::lock_guard<std::mutex> g(PdMu());
  auto& pds = Pds();
  auto it = pds.find(ctx);
  if (it != pds.end()) return it->second;
  ibv_pd* pd = ibv_alloc_pd(ctx);
  if (!pd) return Status::FromErrno(errno, "ibv_alloc_pd on " + std::string(ibv_get_device_name(ctx->device)));
  pds[ctx] = pd;
  return pd;
}

MrLease& MrLease::operator=(MrLease&& o) noexcept {
  if (this != &o) {
    Release();
    mr_ = o.mr_;
    cached_ = o.cached_;
    o.mr_ = nullptr;
    o.cached_ = nullptr;
  }
  return *this;
}

void MrLease::Release() {
  if (!mr_) return;
  if (cached_) {
    Registry& r = Reg();
    std::lock_guard<std::mutex> g(r.mu);
    static_cast<Area*>(cached_)->inuse--;
    r.cv.notify_all();
  } else {
    ibv_dereg_mr(mr_);
    Stats().one_use_live--;
  }
  mr_ = nullptr;
  cached_ = nullptr;
}

Result<MrLease> Lease(ibv_pd* pd, const void* addr, size_t len, int access) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  MrLease lease;
  {
    Registry& r = Reg();
    std::lock_guard<std::mutex> g(r.mu);
    auto it = r.areas.upper_bound(a);
    if (it != r.areas.begin()) {
      Area* area = std::prev(it)->second;
      if (a >= area->start && a + len <= area->start + area->len) {
        auto m = area->mrs.find(pd);
        if (m == area->mrs.end() && r.registered + area->len <= r.limit) {
          ibv_mr* mr = ibv_reg_mr(pd, reinterpret_cast<void*>(area->start), area->len, kAllAccess);
          if (mr) {
            Stats().registrations++;
            r.registered += area->len;
            m = area->mrs.emplace(pd, mr).first;
          }
        }
        if (m != area->mrs.end()) {
          area->inuse++;
          lease.mr_ = m->second;
          lease.cached_ = area;
          return lease;
        }
        // Over the cache limit (or registration failed): one-use registration below.
      }
    }
  }
  ibv_mr* mr = ibv_reg_mr(pd, const_cast<void*>(addr), len, access);
  if (!mr) {
    int e = errno;
    return Status(e == EFAULT ? EFAULT : ENOMEM,
                  "ibv_reg_mr of " + std::to_string(len) + " bytes failed: " + std::strerror(e) +
                      (e == ENOMEM || e == EPERM ? " (RLIMIT_MEMLOCK too low? try ulimit -l unlimited)" : ""));
  }
  Stats().registrations++;
  Stats().one_use_live++;
  lease.mr_ = mr;
  return lease;
}

void SetCachedRegistrationLimit(size_t bytes) {
  Registry& r = Reg();
  std::lock_guard<std::mutex> g(r.mu);
  r.limit = bytes;
}

size_t CachedRegistrations() {
  Registry& r = Reg();
  std::lock_guard<std::mutex> g(r.mu);
  size_t n = 0;
  for (auto& [s, a] : r.areas) n += a->mrs.size();
  return n;
}

RegBuf& RegBuf::operator=(RegBuf&& o) noexcept {
  if (this != &o) {
    this->~RegBuf();
    data_ = o.data_;
    cap_ = o.cap_;
    mr_ = o.mr_;
    pd_ = o.pd_;
    o.data_ = nullptr;
    o.mr_ = nullptr;
  }
  return *this;
}

RegBuf::~RegBuf() {
  if (!data_) return;
  if (!CacheFor(pd_).Keep(RegCache::ClassOf(cap_), {data_, mr_})) {
    ibv_dereg_mr(mr_);
    std::free(data_);
  }
  data_ = nullptr;
}

Result<RegBuf> GetRegBuf(ibv_pd* pd, size_t len) {
  const int cls = RegCache::ClassOf(len);
  RegBuf b;
  b.pd_ = pd;
  b.cap_ = cls <= RegCache::kMaxClass ? RegCache::Bytes(cls) : (len + 4095) / 4096 * 4096;
  if (cls <= RegCache::kMaxClass) {
    if (auto kept = CacheFor(pd).Take(cls)) {
      b.data_ = kept->first;
      b.mr_ = kept->second;
      return b;
    }
  }
  char* mem = static_cast<char*>(std::aligned_alloc(4096, b.cap_));
  if (!mem) return Status(ENOMEM, "no memory for a " + std::to_string(b.cap_) + "-byte RDMA buffer");
  ibv_mr* mr = ibv_reg_mr(pd, mem, b.cap_, kAllAccess);
  if (!mr) {
    int e = errno;
    std::free(mem);
    return Status(ENOMEM, "registering a " + std::to_string(b.cap_) + "-byte RDMA buffer: " +
                              std::strerror(e) + " (RLIMIT_MEMLOCK too low? try ulimit -l unlimited)");
  }
  Stats().registrations++;
  b.data_ = mem;
  b.mr_ = mr;
  return b;
}

Counters& Stats() {
  static Counters* c = new Counters;
  return *c;
}

Status CheckDevices(const std::string& device) {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (!list || n == 0) {
    if (list) ibv_free_device_list(list);
    return Status(ENODEV,
                  "no RDMA device found (ibv_get_device_list is empty): load the NIC's driver, or "
                  "rdma_rxe for Soft-RoCE (rdma link add rxe0 type rxe netdev IFACE), or use "
                  "transport tcp");
  }
  std::string names;
  bool found = device.empty();
  for (int i = 0; i < n; i++) {
    const char* name = ibv_get_device_name(list[i]);
    names += (names.empty() ? "" : ", ") + std::string(name);
    if (device == name) found = true;
  }
  ibv_free_device_list(list);
  if (!found) return Status(ENODEV, "RDMA device '" + device + "' not found (devices here: " + names + ")");
  return Status::OK();
}

Status CheckActivePort(const std::string& device) {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  if (!list) return Status(ENODEV, "no RDMA device found");
  std::string seen;
  bool active = false;
  for (int i = 0; i < n && !active; i++) {
    const char* name = ibv_get_device_name(list[i]);
    if (!device.empty() && device != name) continue;
    ibv_context* ctx = ibv_open_device(list[i]);
    if (!ctx) continue;
    ibv_device_attr da;
    if (ibv_query_device(ctx, &da) == 0) {
      for (uint8_t p = 1; p <= da.phys_port_cnt; p++) {
        ibv_port_attr pa;
        if (ibv_query_port(ctx, p, &pa) == 0) {
          if (pa.state == IBV_PORT_ACTIVE) active = true;
          seen += std::string(seen.empty() ? "" : ", ") + name + " port " + std::to_string(p) + " " +
                  ibv_port_state_str(pa.state);
        }
      }
    }
    ibv_close_device(ctx);
  }
  ibv_free_device_list(list);
  if (!active) return Status(ENETDOWN, "no ACTIVE RDMA port (" + (seen.empty() ? "none found" : seen) + ")");
  return Status::OK();
}

Status CheckMemlock(size_t need) {
  rlimit rl;
  if (getrlimit(RLIMIT_MEMLOCK, &rl) != 0) return Status::FromErrno(errno, "getrlimit(RLIMIT_MEMLOCK)");
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need) return Status::OK();
  return Status(ENOMEM, "RLIMIT_MEMLOCK is " + std::to_string(rl.rlim_cur >> 10) +
                            " KiB but RDMA needs at least " + std::to_string(need >> 20) +
                            " MiB of locked memory (queue buffers and registrations): raise it with "
                            "`ulimit -l unlimited`, LimitMEMLOCK=infinity in a systemd unit, or a "
                            "memlock line in /etc/security/limits.conf");
}

}  // namespace rdma

void RegisterMemory(const void* addr, size_t len) {
  if (!addr || len == 0) return;
  rdma::Registry& r = rdma::Reg();
  std::lock_guard<std::mutex> g(r.mu);
  const uintptr_t a = reinterpret_cast<uintptr_t>(addr);
  if (auto it = r.areas.find(a); it != r.areas.end()) {
    it->second->refs++;
    return;
  }
  auto* area = new rdma::Area;
  area->start = a;
  area->len = len;
  r.areas[a] = area;
}

void UnregisterMemory(const void* addr) {
  rdma::Registry& r = rdma::Reg();
  std::unique_lock<std::mutex> g(r.mu);
  auto it = r.areas.find(reinterpret_cast<uintptr_t>(addr));
  if (it == r.areas.end()) return;
  rdma::Area* area = it->second;
  if (--area->refs > 0) return;
  r.cv.wait(g, [&] { return area->inuse == 0; });
  if (area->refs > 0) return;  // announced again while we waited
  for (auto& [pd, mr] : area->mrs) {
    ibv_dereg_mr(mr);
    r.registered -= area->len;
  }
  r.areas.erase(reinterpret_cast<uintptr_t>(addr));
  delete area;
}

RdmaCounters GetRdmaCounters() {
  auto& s = rdma::Stats();
  RdmaCounters c;
  c.read_bytes = s.read_bytes.load();
  c.write_bytes = s.write_bytes.load();
  c.sends = s.sends.load();
  c.staged_bytes = s.staged_bytes.load();
  c.registrations = s.registrations.load();
  c.cached_registrations = rdma::CachedRegistrations();
  c.one_use_live = static_cast<uint64_t>(std::max<int64_t>(0, s.one_use_live.load()));
  return c;
}

}  // namespace cfs::rpc
