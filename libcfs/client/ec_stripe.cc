#include "client/ec_stripe.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>

#include "common/logging.h"

namespace cfs::client {

StripeView DescribeStripe(const Layout& l, uint64_t stripe) {
  StripeView v;
  v.stripe = stripe;
  const uint32_t w = l.width();
  v.target_id.resize(w);
  v.local_index.resize(w);
  v.state.resize(w);
  for (uint32_t j = 0; j < w; j++) {
    uint32_t t = TargetIndexOf(l, stripe, j);
    v.target_id[j] = l.targets[t];
    v.local_index[j] = LocalUnitIndex(l, stripe, t);
  }
  return v;
}

void FetchStates(EcCalls& calls, uint64_t ino, const Layout& l, const std::vector<StripeView*>& views) {
  std::vector<std::unique_ptr<EcCall>> owned;
  std::vector<EcCall*> batch;
  for (auto* v : views)
    for (uint32_t j = 0; j < l.width(); j++) {
      owned.push_back(calls.Versions(ino, v->target_id[j], v->local_index[j], 1, l.unit));
      batch.push_back(owned.back().get());
    }
  calls.Run(batch);
  size_t i = 0;
  for (auto* v : views)
    for (uint32_t j = 0; j < l.width(); j++, i++) {
      EcCall& c = *owned[i];
      UnitState& s = v->state[j];
      s = UnitState{};
      if (!c.st.ok()) continue;
      auto& r = c.Resp<pb::EcVersionsResponse>();
      if (r.units_size() < 1) continue;
      s.known = true;
      s.damaged = r.units(0).damaged();
      s.cur = r.units(0).cur();
      s.prev = r.units(0).prev();
    }
}

std::chrono::steady_clock::duration SightingClock::Age(uint64_t stripe, uint32_t j,
                                                       const pb::UnitVersion& v) {
  auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = first_.try_emplace({stripe, j, v.seq(), v.tag()}, now);
  return fresh ? std::chrono::steady_clock::duration::zero() : now - it->second;
}

uint32_t Holders(const StripeView& view, const pb::UnitVersion& v) {
  uint32_t n = 0;
  for (const auto& s : view.state) n += s.CanServe(v) ? 1 : 0;
  return n;
}

bool ConsistentVersion(const StripeView& v, uint32_t k, pb::UnitVersion* out) {
  std::vector<pb::UnitVersion> cands;
  for (const auto& s : v.state) {
    if (!s.known || s.damaged) continue;
    cands.push_back(s.cur);
    if (s.prev.seq() != 0) cands.push_back(s.prev);
  }
  std::sort(cands.begin(), cands.end(),
            [](const pb::UnitVersion& a, const pb::UnitVersion& b) { return VersionLess(b, a); });
  for (const auto& c : cands) {
    if (Holders(v, c) >= k) {
      *out = c;
      return true;
    }
  }
  // Units that answered and were never written: a stripe of zeros.
  uint32_t fresh = 0;
  for (const auto& s : v.state) fresh += (s.known && !s.damaged && s.cur.seq() == 0) ? 1 : 0;
  if (fresh >= k) {
    *out = pb::UnitVersion();
    return true;
  }
  return false;
}

Status ReadUnitsAt(EcCalls& calls, const ec::ErasureCodec& codec, uint64_t ino, const Layout& l,
                   const StripeView& view, const pb::UnitVersion& ver, uint32_t lo, uint32_t hi,
                   const std::vector<uint32_t>& wanted, const std::vector<char*>& out,
                   std::set<uint32_t> avoid, ReadReport* report, uint32_t rotate,
                   const std::map<uint32_t, const char*>* known) {
  const size_t len = hi - lo;
  if (ver.seq() == 0) {  // never written: zeros
    for (char* o : out) std::memset(o, 0, len);
    return Status::OK();
  }
  const uint32_t w = l.width(), k = l.k;
  std::map<uint32_t, char*> want_out;
  for (size_t i = 0; i < wanted.size(); i++) want_out[wanted[i]] = out[i];
  std::vector<std::unique_ptr<char[]>> scratch;
  std::map<uint32_t, const char*> have;  // unit -> buffer holding its [lo, hi) at ver
  if (known)
    for (auto& [j, b] : *known)
      if (!avoid.count(j)) {
        have[j] = b;
        if (want_out.count(j) && want_out[j] != b) std::memcpy(want_out[j], b, len);
      }
  Status last;
  for (int round = 0; round < int(w) + 1; round++) {
    // Sources: wanted units first (they land in place), then the others rotated.
    std::vector<uint32_t> order;
    for (uint32_t j : wanted) order.push_back(j);
    for (uint32_t i = 0; i < w; i++) {
      uint32_t j = (i + rotate) % w;
      if (!want_out.count(j)) order.push_back(j);
    }
    std::vector<uint32_t> pick;
    bool all_wanted_direct = true;
    for (uint32_t j : wanted)
      if (avoid.count(j) || !view.state[j].CanServe(ver)) all_wanted_direct = false;
    if (all_wanted_direct) {
      for (uint32_t j : wanted)
        if (!have.count(j)) pick.push_back(j);
    } else {
      for (uint32_t j : order) {
        if (pick.size() + have.size() >= k) break;
        if (avoid.count(j) || have.count(j) || !view.state[j].CanServe(ver)) continue;
        pick.push_back(j);
      }
      if (pick.size() + have.size() < k)
        return Status::IOError("stripe " + std::to_string(view.stripe) + " of ino " + std::to_string(ino) +
                               ": fewer than k=" + std::to_string(k) + " units can serve version " +
                               VersionString(ver) + (last.ok() ? "" : " (last error: " + last.ToString() + ")"));
    }
    std::vector<std::unique_ptr<EcCall>> owned;
    std::vector<EcCall*> batch;
    std::vector<char*> dest;
    for (uint32_t j : pick) {
      char* d;
      if (want_out.count(j)) {
        d = want_out[j];
      } else {
        scratch.emplace_back(new char[len]);
        d = scratch.back().get();
      }
      dest.push_back(d);
      owned.push_back(calls.Read(ino, view.target_id[j], view.local_index[j], l.unit, lo,
                                 static_cast<uint32_t>(len), ver, d));
      batch.push_back(owned.back().get());
    }
    calls.Run(batch);
    for (size_t i = 0; i < pick.size(); i++) {
      EcCall& c = *owned[i];
      uint32_t j = pick[i];
      if (c.st.ok()) {
        if (c.bulk_in_len() < len) std::memset(dest[i] + c.bulk_in_len(), 0, len - c.bulk_in_len());
        have[j] = dest[i];
        continue;
      }
      last = c.st;
      avoid.insert(j);
      if (report) (c.st.err() == EBADMSG ? report->corrupt : report->failed).insert(j);
      if (c.st.err() == EBADMSG)
        LOG_WARN("checksum error on ino {} stripe {} unit {} (target {}): decoding from the others",
                 ino, view.stripe, j, view.target_id[j]);
    }
    bool done = true;
    for (uint32_t j : wanted)
      if (!have.count(j)) done = false;
    if (done) return Status::OK();
    if (have.size() < k) continue;  // lost some sources: pick more
    // Decode the wanted units we could not read from k we have.
    std::vector<uint32_t> present;
    std::vector<const uint8_t*> in;
    for (auto& [j, b] : have) {
      if (present.size() == k) break;
      present.push_back(j);
      in.push_back(reinterpret_cast<const uint8_t*>(b));
    }
    std::vector<uint32_t> missing;
    std::vector<uint8_t*> mout;
    for (uint32_t j : wanted)
      if (!have.count(j)) {
        missing.push_back(j);
        mout.push_back(reinterpret_cast<uint8_t*>(want_out[j]));
      }
    return codec.Decode(present, in.data(), missing, mout.data(), len);
  }
  return Status::IOError("stripe " + std::to_string(view.stripe) + ": read did not converge");
}

}  // namespace cfs::client
