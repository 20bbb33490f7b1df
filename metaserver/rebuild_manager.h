// RebuildManager: brings lost redundancy back (docs/erasure-coding.md,
// "Redundancy management"). One thread that
//  - retires targets whose worker has been down longer than rebuild_after (or
//    on REBUILD_START): every file layout naming the target gets an up spare
//    target at the same index, recorded as degraded for it;
//  - drains the "degraded" records: (target, file) pairs whose target is up are
//    resynced with client::Repairer::ResyncTarget, throttled to `rate`; records
//    of down targets wait for the target to return or be retired.
// The Repairer comes from a factory (tests inject their own) and is created
// lazily, on the first resync.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "repair_util.h"
#include "cfs.pb.h"
#include "client/repair.h"
#include "namespace_store.h"
#include "worker_registry.h"

namespace cfs::meta {

using RepairerFactory =
    std::function<Result<std::unique_ptr<client::Repairer>>(const std::string& meta_addr)>;

struct RebuildOptions {
  std::chrono::seconds rebuild_after{600};    // 0: never retire automatically
  uint64_t rate_bytes_per_s = 200ull << 20;   // 0: unthrottled
  std::chrono::milliseconds poll{1000};       // how often idle work is looked at again
  std::chrono::seconds no_spare_retry{30};    // retire attempts that found no spare wait this long
};

class RebuildManager {
 public:
  RebuildManager(NamespaceStore* store, WorkerRegistry* registry, RepairerFactory factory,
                 const RebuildOptions& opts);
  ~RebuildManager();

  // meta_addr: this M-worker's HOST:PORT, for the Repairer it creates.
  void Start(const std::string& meta_addr);
  void Stop();
  // Something changed (a report, a worker registered): look at the work now.
  void Kick();
  // REBUILD_START: target 0 retires every down target and retries failed
  // resyncs now; a given target must be known, not up.
  Status Request(uint32_t target_id);
  pb::RebuildStatusResponse GetStatus();

  // Swaps spares into every layout naming `target` (a down target); retires
  // it when no file is left on it. *no_spare counts files left as they were.
  // EAGAIN if the target came back up meanwhile. Runs on the manager's thread
  // normally; public for tests.
  Status RetireTarget(uint32_t target, uint64_t* no_spare);
  // One pass over the degraded records; public for tests.
  void DrainOnce();

 private:
  using Clock = std::chrono::steady_clock;
  void Run();
  void RetireDue();
  // Files per down target that still name it (cached per down set).
  std::map<uint32_t, uint64_t> ReferencedDown(const std::vector<uint32_t>& down);
  Status EnsureRepairer();
  // Throttle: waits until `bytes` more fit the rate; false once stopping.
  bool Pace(uint64_t bytes);
  void SetDetail(const std::string& d);

  NamespaceStore* store_;
  WorkerRegistry* registry_;
  RepairerFactory factory_;
  std::string meta_addr_;
  RebuildOptions opts_;
  std::unique_ptr<client::Repairer> repairer_;  // manager thread only

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool stop_ = false, kicked_ = false, request_all_ = false;
  std::set<uint32_t> requested_;
  std::map<uint32_t, Clock::time_point> retire_retry_at_;
  std::map<uint32_t, uint64_t> no_spare_;  // target -> files without a spare
  std::map<uint32_t, uint64_t> lost_;      // retired target -> files with m = 0 that named it
  std::map<std::pair<uint32_t, uint64_t>, std::pair<Clock::time_point, int>> backoff_;  // failures
  std::string detail_, last_error_;
  bool pass_active_ = false;
  Clock::time_point pass_start_{}, pass_end_{};
  uint64_t files_total_ = 0, files_done_ = 0, bytes_total_ = 0, errors_ = 0;
  std::atomic<uint64_t> bytes_done_{0};
  RatePacer pacer_;

  std::mutex scan_mu_;  // the referenced-by-layouts cache
  bool refs_valid_ = false;
  std::vector<uint32_t> refs_down_;
  std::map<uint32_t, uint64_t> refs_;

  std::thread thread_;
};

}  // namespace cfs::meta
