// Placement: resolves a new file's layout shape (hint, else the parent
// directory's default, else the cluster default) and picks its targets among
// the up, non-retired targets: most free space first (ties broken at random),
// one target per worker where possible (a k+m layout then survives the loss of
// any m workers; with fewer workers it still places, on distinct targets).
#pragma once

#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

#include "cfs.pb.h"
#include "common/status.h"

namespace cfs::meta {

class Placement {
 public:
  // k = 0 in the default means "all up targets, at most 16".
  Placement(uint32_t default_unit, uint32_t default_k, uint32_t default_m);

  // Checks a default, a hint or a directory layout: zero fields are allowed
  // (they inherit); m is 0..4, k 0..16 (k = 0 inherits).
  static Status CheckShape(const pb::Layout& l);

  // `up` must hold only up, non-retired targets (WorkerRegistry::UpTargets).
  // A parity layout that finds fewer than k+m up targets but at least k takes
  // down ones from `down` (non-retired) for the rest: the file starts out
  // degraded, as writes to existing files do, instead of failing.
  Result<pb::Layout> Choose(const pb::Layout& hint, const pb::Layout* dir_layout,
                            const std::vector<pb::TargetInfo>& up,
                            const std::vector<pb::TargetInfo>& down = {});
  pb::Layout DefaultLayout() const;

 private:
  uint32_t unit_, k_, m_;
  std::mutex mu_;
  std::mt19937_64 rng_;
};

}  // namespace cfs::meta
