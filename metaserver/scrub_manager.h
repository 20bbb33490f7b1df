// ScrubManager: verifies and repairs every erasure-coded file
// (client::Repairer::Scrub: block checksums and stripe parity), one pass on
// SCRUB_START and, with an interval set, a background pass every interval.
// Throttled to a byte rate; totals come from the Repairer's RepairStats.
#pragma once

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "repair_util.h"
#include "cfs.pb.h"
#include "client/repair.h"
#include "namespace_store.h"
#include "rebuild_manager.h"

namespace cfs::meta {

struct ScrubOptions {
  uint64_t rate_bytes_per_s = 100ull << 20;  // 0: unthrottled
  std::chrono::seconds interval{0};          // 0: no background passes
};

class ScrubManager {
 public:
  ScrubManager(NamespaceStore* store, RepairerFactory factory, const ScrubOptions& opts);
  ~ScrubManager();

  // meta_addr: this M-worker's HOST:PORT, for the Repairer it creates.
  void Start(const std::string& meta_addr);
  void Stop();
  // SCRUB_START: begins a pass now (rate 0: the configured rate); while a
  // pass runs, one more pass is queued to follow it.
  Status StartPass(uint64_t rate_bytes_per_s);
  pb::ScrubStatusResponse GetStatus();

 private:
  using Clock = std::chrono::steady_clock;
  void Run();
  void Pass(uint64_t rate);
  bool Pace(uint64_t bytes, uint64_t rate);

  NamespaceStore* store_;
  RepairerFactory factory_;
  std::string meta_addr_;
  ScrubOptions opts_;
  std::unique_ptr<client::Repairer> repairer_;  // scrub thread only

  std::mutex mu_;  // guards what follows
  std::condition_variable cv_;
  bool stop_ = false, requested_ = false, running_ = false;
  uint64_t requested_rate_ = 0;
  pb::ScrubStatusResponse status_;  // totals of the running or last pass
  Clock::time_point pass_start_{};
  RatePacer pacer_;
  std::thread thread_;
};

}  // namespace cfs::meta
