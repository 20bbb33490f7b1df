// Small helpers the rebuild and scrub managers share.
#pragma once

#include <chrono>
#include <cstdint>

#include "cfs.pb.h"
#include "client/client.h"
#include "common/layout.h"

namespace cfs::meta {

// Pacing for the rebuild and scrub throttles: the time by which `bytes`
// more may have moved at `rate` bytes/s, with at most 250 ms of burst credit.
// Not thread-safe: callers hold their own lock.
class RatePacer {
 public:
  std::chrono::steady_clock::time_point Admit(uint64_t bytes, uint64_t rate) {
    auto now = std::chrono::steady_clock::now();
    if (rate == 0) return now;
    if (next_ < now - std::chrono::milliseconds(250)) next_ = now - std::chrono::milliseconds(250);
    next_ += std::chrono::nanoseconds(bytes * 1000000000ull / rate);
    return next_;
  }

 private:
  std::chrono::steady_clock::time_point next_{};
};

// pb::Layout -> Layout is client::FromProto (libcfs/client/client.h).
using client::FromProto;

// Bytes a resync of target index t rebuilds for a file of file_size bytes, as
// the Repairer paces them: one unit per stripe the target takes part in (the
// k units read for it are not counted: --rebuild-rate is reconstructed bytes).
inline uint64_t EstimateTargetBytes(const Layout& l, uint32_t t, uint64_t file_size) {
  (void)t;
  if (l.k == 0 || l.unit == 0 || l.targets.empty()) return 0;
  uint64_t stripes = (file_size + l.stripe_bytes() - 1) / l.stripe_bytes();
  // Target t takes part in width() of every n stripes.
  return stripes * l.width() / l.n() * l.unit;
}

}  // namespace cfs::meta
