// EcIo: reads and writes of files whose layout has parity (m > 0), following
// docs/erasure-coding.md: versioned copy-on-write units, full stripes encoded
// in the client, partial stripes by parity deltas, degraded reads decoded from
// any k units, degraded writes reported to the M-worker. Calls are
// synchronous; StripedIo runs them on its task pool.
#pragma once

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>

#include "client/data_path.h"
#include "client/ec_stripe.h"
#include "client/meta_client.h"

namespace cfs::client {

class EcIo {
 public:
  // meta may be null (then degraded writes are not reported).
  EcIo(rpc::ChannelPool* pool, ClusterMapCache* map, MetaClient* meta,
       std::chrono::milliseconds failure_timeout);

  Status Write(uint64_t ino, const Layout& l, const char* buf, uint64_t off, uint64_t len) {
    return Write(ino, l, WriteSource(buf, off, len), off, len);
  }
  Status Write(uint64_t ino, const Layout& l, const WriteSource& src, uint64_t off, uint64_t len);
  Status Read(uint64_t ino, const Layout& l, char* buf, uint64_t off, uint64_t len);
  // FSYNC_OBJECT / DELETE_OBJECT on every target; up to m may fail (down).
  Status AllTargets(pb::Method method, uint64_t ino, const Layout& l);
  // Zeroes the rest of the last stripe and drops whole stripes past `size`.
  Status Truncate(uint64_t ino, const Layout& l, uint64_t size);

  EcCalls& calls() { return calls_; }
  // Serializes this process's operations on one stripe.
  std::mutex& StripeLock(uint64_t ino, uint64_t stripe);
  // A fresh version tag (random, never 0).
  uint64_t NewTag();
  // Tells the M-worker these targets missed writes of ino (best effort: logged on failure).
  void ReportDegraded(uint64_t ino, const std::set<uint32_t>& target_ids);

 private:
  struct StripeWrite;
  Status WriteStripes(uint64_t ino, const Layout& l, const ec::ErasureCodec& codec,
                      std::vector<StripeWrite>& sw, std::set<uint32_t>* degraded);
  // method (an ObjectRequest) to every target of l; the targets that failed go
  // to *missed; more than m of them is an error.
  Status ObjectOnAll(pb::Method method, uint64_t ino, const Layout& l,
                     const std::function<uint64_t(uint32_t)>& size_of, std::set<uint32_t>* missed);
  void RepairCorrupt(uint64_t ino, const Layout& l, const ec::ErasureCodec& codec,
                     const StripeView& view, const pb::UnitVersion& ver, uint32_t j, uint32_t lo,
                     uint32_t hi);

  // The version this client last wrote to a stripe: the first guess of the next write.
  pb::UnitVersion CachedVersion(uint64_t ino, uint64_t stripe);
  void RememberVersion(uint64_t ino, uint64_t stripe, const pb::UnitVersion& v);
  static constexpr size_t kMaxCachedVersions = 16384;

  EcCalls calls_;
  MetaClient* meta_;
  std::mutex vmu_;
  std::map<std::pair<uint64_t, uint64_t>, pb::UnitVersion> versions_;
  std::array<std::mutex, 512> locks_;
};

}  // namespace cfs::client
