#include "placement.h"

#include "common/logging.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/layout.h"

namespace cfs::meta {

Placement::Placement(uint32_t default_unit, uint32_t default_k, uint32_t default_m)
    : unit_(default_unit), k_(default_k), m_(default_m), rng_(std::random_device{}()) {}

Status Placement::CheckShape(const pb::Layout& l) {
  Layout shape;
  shape.unit = l.unit() ? l.unit() : kDefaultStripeUnit;
  shape.k = l.k() ? l.k() : 1;
  shape.m = l.m();
  return shape.ValidateShape();
}

pb::Layout Placement::DefaultLayout() const {
  pb::Layout l;
  l.set_unit(unit_);
  l.set_k(k_);
  l.set_m(m_);
  return l;
}

Result<pb::Layout> Placement::Choose(const pb::Layout& hint, const pb::Layout* dir,
                                     const std::vector<pb::TargetInfo>& up_only,
                                     const std::vector<pb::TargetInfo>& down) {
  std::vector<pb::TargetInfo> up = up_only;
  CFS_RETURN_IF_ERROR(CheckShape(hint));
  auto pick = [&](uint32_t h, uint32_t d, uint32_t def) { return h ? h : (d ? d : def); };
  uint32_t unit = pick(hint.unit(), dir ? dir->unit() : 0, unit_);
  uint32_t k = pick(hint.k(), dir ? dir->k() : 0, k_);
  // A layout (hint or directory's) that names k names m too: 6+0 under a
  // 4+2 default is "no parity", not "inherit the default's parity".
  uint32_t m = hint.k() || hint.m() ? hint.m() : (dir && dir->k() ? dir->m() : m_);
  if (k == 0) {
    // "All up targets": leave room for the parity units.
    uint32_t n = static_cast<uint32_t>(up.size());
    k = std::clamp<uint32_t>(n > m ? n - m : 1, 1, kMaxDataUnits);
  }
  Layout shape;
  shape.unit = unit;
  shape.k = k;
  shape.m = m;
  CFS_RETURN_IF_ERROR(shape.ValidateShape());
  const uint32_t need = k + m;
  size_t down_used = 0;
  if (m > 0 && up.size() < need && up.size() >= k)
    for (const auto& t : down)
      if (up.size() < need) {
        up.push_back(t);
        up.back().set_free(0);  // sorts last: up targets first
        down_used++;
      }
  if (up.size() < need)
    return Status::NoSpace("layout " + std::to_string(k) + "+" + std::to_string(m) + " needs " +
                           std::to_string(need) + " targets, only " + std::to_string(up.size()) +
                           " up (retired targets are never used)");
  // Order: free space in GiB buckets (descending), random within a bucket.
  std::vector<std::pair<uint64_t, const pb::TargetInfo*>> order;
  {
    std::lock_guard l(mu_);
    for (auto& t : up) order.emplace_back(rng_(), &t);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    uint64_t fa = a.second->free() >> 30, fb = b.second->free() >> 30;
    if (fa != fb) return fa > fb;
    return a.first < b.first;
  });
  pb::Layout out;
  out.set_unit(unit);
  out.set_k(k);
  out.set_m(m);
  std::set<uint32_t> used_workers, used_targets;
  for (auto& [r, t] : order) {  // one per worker first
    if (uint32_t(out.targets_size()) == need) break;
    if (used_workers.count(t->worker_id())) continue;
    used_workers.insert(t->worker_id());
    used_targets.insert(t->id());
    out.add_targets(t->id());
  }
  for (auto& [r, t] : order) {  // then fill from workers already used
    if (uint32_t(out.targets_size()) == need) break;
    if (used_targets.insert(t->id()).second) out.add_targets(t->id());
  }
  if (down_used)
    LOG_WARN("placing a {}+{} file on {} down target(s): it starts out degraded", k, m, down_used);
  Layout full = shape;
  full.targets.assign(out.targets().begin(), out.targets().end());
  CFS_RETURN_IF_ERROR(full.Validate());
  return out;
}

}  // namespace cfs::meta
