#include "client/ec_io.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <tuple>
#include <thread>

#include "common/logging.h"
#include "common/metrics.h"

namespace cfs::client {
namespace {

constexpr int kMaxAttempts = 40;

std::atomic<uint64_t>& EcCounter(const char* what) {
  return Metrics::Get().Counter("cfs_client_ec_events_total", std::string("event=\"") + what + "\"",
                                "Erasure-coded data path events (degraded reads/writes, conflicts, repairs)");
}

// Attempts of a stripe read that races writers before it reports EIO.
constexpr int kStripeReadRetries = 8;

void Backoff(int attempt) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  int cap = std::min(2 << std::min(attempt, 6), 100);
  std::this_thread::sleep_for(std::chrono::milliseconds(1 + rng() % cap));
}

// Why a unit refused a write of version `ver`.
enum class Refusal {
  kRival,   // it holds another writer's version from the same base
  kAhead,   // it holds something newer still
  kRebase,  // it is behind, and the call is a whole unit: send it on top of what it holds
  kLate,    // at our base's level but not at it, or one below: the write that made
            // our base (or its writer's resend) is most likely still landing
  kBehind,  // it is behind (missed writes)
};

Refusal ClassifyRefusal(EcCall& call, const pb::UnitVersion& ver) {
  const auto& cur = call.Resp<pb::EcWriteResponse>().cur();
  if (cur.seq() == ver.seq()) return Refusal::kRival;
  if (cur.seq() > ver.seq()) return Refusal::kAhead;
  if (call.Req<pb::EcWriteRequest>().mode() == pb::EC_FULL) return Refusal::kRebase;
  return cur.seq() + 2 >= ver.seq() ? Refusal::kLate : Refusal::kBehind;
}

// Worth sending again: the unit is expected to come back to our base.
bool WaitFor(Refusal r) { return r == Refusal::kRival || r == Refusal::kLate || r == Refusal::kRebase; }

}  // namespace

// One stripe of a write: which file bytes of it change.
struct EcIo::StripeWrite {
  uint64_t stripe = 0;
  uint64_t lo = 0, hi = 0;  // file byte range inside the stripe
  const WriteSource* src = nullptr;  // the caller's bytes
  bool full = false;
  bool done = false;
  StripeView view;
};

EcIo::EcIo(rpc::ChannelPool* pool, ClusterMapCache* map, MetaClient* meta,
           std::chrono::milliseconds failure_timeout)
    : calls_(pool, map, failure_timeout), meta_(meta) {}

std::mutex& EcIo::StripeLock(uint64_t ino, uint64_t stripe) {
  uint64_t h = (ino * 0x9E3779B97F4A7C15ull) ^ (stripe * 0xC2B2AE3D27D4EB4Full);
  return locks_[(h >> 17) % locks_.size()];
}

uint64_t EcIo::NewTag() {
  thread_local std::mt19937_64 rng(std::random_device{}() ^ uint64_t(std::hash<std::thread::id>()(std::this_thread::get_id())));
  uint64_t t = 0;
  while (t == 0) t = rng();
  return t;
}

void EcIo::ReportDegraded(uint64_t ino, const std::set<uint32_t>& target_ids) {
  if (target_ids.empty()) return;
  EcCounter("degraded_write")++;
  if (!meta_) return;
  pb::ReportDegradedRequest req;
  req.set_ino(ino);
  for (uint32_t t : target_ids) req.add_target_ids(t);
  pb::Empty resp;
  Status st = meta_->Call(pb::REPORT_DEGRADED, req, &resp);
  if (!st.ok()) LOG_WARN("could not report degraded writes of ino {}: {}", ino, st.ToString());
}

Status EcIo::Write(uint64_t ino, const Layout& l, const WriteSource& given, uint64_t off,
                   uint64_t len) {
  if (len == 0) return Status::OK();
  CFS_ASSIGN_OR_RETURN(auto codec, ec::GetCodec(l.k, l.m));
  const uint64_t sb = l.stripe_bytes();
  // Units must not straddle pieces (encoding and deltas take one pointer per
  // unit); a source that breaks elsewhere is copied into one buffer first.
  const WriteSource* source = &given;
  std::unique_ptr<char[]> flat;
  std::optional<WriteSource> flat_src;
  for (size_t i = 1; i < given.pieces().size(); i++) {
    if (given.pieces()[i].off % l.unit == 0) continue;
    flat.reset(new char[len]);
    for (const auto& p : given.pieces()) std::memcpy(flat.get() + (p.off - off), p.buf, p.len);
    flat_src.emplace(flat.get(), off, len);
    source = &*flat_src;
    break;
  }
  std::vector<StripeWrite> sw;
  for (uint64_t pos = off; pos < off + len;) {
    StripeWrite w;
    w.stripe = pos / sb;
    w.lo = pos;
    w.hi = std::min(off + len, (w.stripe + 1) * sb);
    w.src = source;
    w.full = w.lo == w.stripe * sb && w.hi == (w.stripe + 1) * sb;
    w.view = DescribeStripe(l, w.stripe);
    sw.push_back(std::move(w));
    pos = sw.back().hi;
  }
  // Lock the stripes in a fixed order (lock slots may repeat).
  std::vector<std::mutex*> locks;
  for (auto& w : sw) locks.push_back(&StripeLock(ino, w.stripe));
  std::sort(locks.begin(), locks.end());
  locks.erase(std::unique(locks.begin(), locks.end()), locks.end());
  for (auto* m : locks) m->lock();
  std::set<uint32_t> degraded;
  Status st = WriteStripes(ino, l, *codec, sw, &degraded);
  for (auto it = locks.rbegin(); it != locks.rend(); ++it) (*it)->unlock();
  if (st.ok()) ReportDegraded(ino, degraded);
  return st;
}

Status EcIo::WriteStripes(uint64_t ino, const Layout& l, const ec::ErasureCodec& codec,
                          std::vector<StripeWrite>& sw, std::set<uint32_t>* degraded) {
  const uint32_t k = l.k, m = l.m, w = l.width(), unit = l.unit;
  const uint64_t sb = l.stripe_bytes();
  Status last_err;
  // First try: assume every unit holds the version this client last wrote
  // (or nothing): one round trip instead of two for appends and rewrites by
  // one writer. Any unit that disagrees refuses, and the next try looks.
  bool guess = true;
  SightingClock seen;
  const auto settle_by = std::chrono::steady_clock::now() + kSettleLimit;
  std::set<std::tuple<uint64_t, uint32_t, uint64_t, uint64_t>> undone, emptied;
  for (int attempt = 0; attempt < kMaxAttempts; attempt++) {
    std::vector<StripeWrite*> todo;
    for (auto& s : sw)
      if (!s.done) todo.push_back(&s);
    if (todo.empty()) return Status::OK();
    std::vector<StripeView*> views;
    for (auto* s : todo) views.push_back(&s->view);
    if (guess) {
      for (auto* s : todo) {
        pb::UnitVersion g = CachedVersion(ino, s->stripe);
        for (auto& u : s->view.state) {
          u = UnitState{};
          u.known = true;
          u.cur = g;
        }
      }
    } else {
      FetchStates(calls_, ino, l, views);
    }

    // Consistent base per stripe; roll back leftovers of dead writers.
    std::vector<pb::UnitVersion> base(todo.size());
    std::vector<std::unique_ptr<EcCall>> rollbacks;
    std::vector<std::tuple<uint64_t, uint32_t, uint64_t, uint64_t>> rollback_keys;
    bool unreadable = false, wait = false;
    for (size_t i = 0; i < todo.size(); i++) {
      const StripeView& v = todo[i]->view;
      if (!ConsistentVersion(v, k, &base[i])) {
        unreadable = true;
        last_err = Status::IOError("stripe " + std::to_string(v.stripe) + " of ino " + std::to_string(ino) +
                                   ": fewer than k=" + std::to_string(k) + " of its units are reachable");
        continue;
      }
      const uint32_t holders = Holders(v, base[i]);
      for (uint32_t j = 0; j < w; j++) {
        const UnitState& u = v.state[j];
        if (guess || !u.known || u.damaged) continue;
        if (VersionLess(base[i], u.cur)) {
          // Newer than the consistent version: most likely another client's
          // write still landing; undoing it would leave that writer's
          // acknowledged stripe a unit short. Only a leftover that outlives
          // kLeftoverGrace (its writer died) is undone, each once; one that
          // stays (no previous version kept) is written around and reported,
          // or emptied when the stripe was never written.
          auto key = std::make_tuple(v.stripe, j, u.cur.seq(), u.cur.tag());
          if (seen.Age(v.stripe, j, u.cur) < kLeftoverGrace) {
            wait = true;
          } else if (!undone.count(key)) {
            rollbacks.push_back(calls_.Rollback(ino, v.target_id[j], v.local_index[j], unit, u.cur));
            rollback_keys.push_back(key);
          } else if (base[i].seq() == 0 && !emptied.count(key)) {
            rollbacks.push_back(calls_.Rollback(ino, v.target_id[j], v.local_index[j], unit, u.cur, true));
            rollback_keys.push_back(key);
          }
        } else if (u.cur.seq() + 1 == base[i].seq() ||
                   (holders <= m && u.cur.seq() == base[i].seq() && !VersionEq(u.cur, base[i]))) {
          // One version behind the rest: another client's write still landing
          // here, or a unit that missed the last write (then go around it).
          // Or, where k <= m, a rival of a base held by only k..m units, whose
          // writer may still give it up: wait for it to decide.
          if (seen.Age(v.stripe, j, u.cur) < (holders <= m ? kLeftoverGrace : kBehindGrace)) wait = true;
        }
      }
    }
    if (!rollbacks.empty()) {
      std::vector<EcCall*> b;
      for (auto& c : rollbacks) b.push_back(c.get());
      calls_.Run(b);
      EcCounter("rollback") += rollbacks.size();
      for (auto& key : rollback_keys)
        if (!undone.insert(key).second) emptied.insert(key);
      continue;  // look again
    }
    if (wait && !unreadable) {
      if (std::chrono::steady_clock::now() > settle_by)
        return Status(EBUSY, "stripe write of ino " + std::to_string(ino) + ": other writers kept the stripe " +
                                 "moving for " + std::to_string(kSettleLimit.count()) + " s");
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      attempt--;  // waiting is not a failed attempt
      continue;
    }
    if (unreadable) {
      Backoff(attempt);
      continue;
    }
    // Build the writes of every stripe.
    struct Plan {
      pb::UnitVersion ver;
      std::vector<std::unique_ptr<EcCall>> calls;
      std::vector<uint32_t> unit_of_call;
      std::set<uint32_t> skipped;  // units not written (down, stale, damaged)
      std::vector<std::unique_ptr<uint8_t[]>> bufs;
    };
    std::vector<Plan> plans(todo.size());
    Status plan_err;
    for (size_t i = 0; i < todo.size() && plan_err.ok(); i++) {
      StripeWrite& s = *todo[i];
      const StripeView& v = s.view;
      Plan& p = plans[i];
      p.ver.set_seq(base[i].seq() + 1);
      p.ver.set_tag(NewTag());
      // A unit that looked behind may only have answered before the last
      // write reached it (the states are not one snapshot): partial writes go
      // to it as well, and it refuses if it really is behind.
      std::vector<bool> current(w), usable(w);
      for (uint32_t j = 0; j < w; j++) {
        const UnitState& u = v.state[j];
        usable[j] = u.known && !u.damaged;
        current[j] = usable[j] && VersionEq(u.cur, base[i]);
      }
      auto add = [&](uint32_t j, const pb::UnitVersion& b, pb::EcWriteMode mode, uint32_t o,
                     uint32_t n, const char* data) {
        p.calls.push_back(calls_.Write(ino, v.target_id[j], v.local_index[j], unit, b, p.ver, mode, o, n, data));
        p.unit_of_call.push_back(j);
      };
      const uint64_t s0 = s.stripe * sb;
      if (s.full) {
        std::vector<const uint8_t*> data(k);
        std::vector<uint8_t*> parity(m);
        for (uint32_t j = 0; j < k; j++) data[j] = reinterpret_cast<const uint8_t*>(s.src->At(s0 + uint64_t(j) * unit));
        for (uint32_t i2 = 0; i2 < m; i2++) {
          p.bufs.emplace_back(new uint8_t[unit]);
          parity[i2] = p.bufs.back().get();
        }
        codec.Encode(data.data(), parity.data(), unit);
        for (uint32_t j = 0; j < w; j++) {
          const UnitState& u = v.state[j];
          const char* d = j < k ? reinterpret_cast<const char*>(data[j])
                                : reinterpret_cast<const char*>(parity[j - k]);
          if (current[j]) {
            add(j, base[i], pb::EC_FULL, 0, unit, d);
          } else if (u.known && !u.damaged && VersionLess(u.cur, base[i])) {
            add(j, u.cur, pb::EC_FULL, 0, unit, d);  // stale unit: a whole new unit resyncs it
          } else {
            p.skipped.insert(j);
          }
        }
        continue;
      }
      // Partial stripe: parity deltas over the hull of the changed in-unit ranges.
      struct Change { uint32_t j, a, b; const char* src; };
      std::vector<Change> changes;
      for (uint64_t pos = s.lo; pos < s.hi;) {
        uint32_t j = static_cast<uint32_t>((pos - s0) / unit);
        uint64_t ustart = s0 + uint64_t(j) * unit;
        uint64_t end = std::min<uint64_t>(s.hi, ustart + unit);
        changes.push_back({j, static_cast<uint32_t>(pos - ustart), static_cast<uint32_t>(end - ustart),
                           s.src->At(pos)});
        pos = end;
      }
      uint32_t hlo = unit, hhi = 0;
      for (auto& c : changes) {
        hlo = std::min(hlo, c.a);
        hhi = std::max(hhi, c.b);
      }
      const size_t hl = hhi - hlo;
      std::vector<uint8_t*> pd(m);
      for (uint32_t i2 = 0; i2 < m; i2++) {
        p.bufs.emplace_back(new uint8_t[hl]());
        pd[i2] = p.bufs.back().get();
      }
      std::set<uint32_t> touched;
      for (auto& c : changes) {
        const size_t n = c.b - c.a;
        std::unique_ptr<uint8_t[]> delta(new uint8_t[n]);
        if (base[i].seq() == 0) {
          std::memcpy(delta.get(), c.src, n);  // old bytes are zeros
        } else {
          Status rs = ReadUnitsAt(calls_, codec, ino, l, v, base[i], c.a, c.b, {c.j},
                                  {reinterpret_cast<char*>(delta.get())}, {}, nullptr, c.j);
          if (!rs.ok()) {
            plan_err = rs;
            break;
          }
          for (size_t x = 0; x < n; x++) delta[x] ^= static_cast<uint8_t>(c.src[x]);
        }
        std::vector<uint8_t*> at(m);
        for (uint32_t i2 = 0; i2 < m; i2++) at[i2] = pd[i2] + (c.a - hlo);
        codec.AccumulateDelta(c.j, delta.get(), at.data(), n);
        touched.insert(c.j);
        if (usable[c.j]) add(c.j, base[i], pb::EC_RANGE, c.a, c.b - c.a, c.src);
      }
      for (uint32_t j = 0; j < w; j++) {
        if (!usable[j]) {
          p.skipped.insert(j);
        } else if (j >= k) {
          add(j, base[i], pb::EC_XOR, hlo, static_cast<uint32_t>(hl), reinterpret_cast<const char*>(pd[j - k]));
        } else if (!touched.count(j)) {
          add(j, base[i], pb::EC_BUMP, 0, 0, nullptr);
        }
      }
    }
    if (!plan_err.ok()) {
      last_err = plan_err;
      if (!guess) Backoff(attempt);
      guess = false;
      continue;
    }

    std::vector<EcCall*> batch;
    for (auto& p : plans)
      for (auto& c : p.calls) batch.push_back(c.get());
    const auto sent = std::chrono::steady_clock::now();
    calls_.Run(batch);

    // A version that k units took is kept when no rival at the same base can
    // also reach k: nothing refused it, or more than m units took it. Readers
    // and other writers roll forward onto any version k units hold, so undoing
    // such a version would race with writes built on it. A smaller share is
    // undone and the write retried.
    std::vector<std::unique_ptr<EcCall>> undo;
    struct Kept {
      StripeWrite* s;
      pb::UnitVersion ver;
      std::set<uint32_t> failed;
      std::vector<std::pair<uint32_t, EcCall*>> again;  // refused, worth sending again
    };
    std::vector<Kept> kept;
    bool retry = false;
    for (size_t i = 0; i < todo.size(); i++) {
      Plan& p = plans[i];
      StripeWrite& s = *todo[i];
      uint32_t accepted = 0, rivals = 0;
      std::vector<uint32_t> ok_units;
      Kept kp{&s, p.ver, p.skipped, {}};
      for (size_t c = 0; c < p.calls.size(); c++) {
        EcCall& call = *p.calls[c];
        uint32_t j = p.unit_of_call[c];
        if (!call.st.ok()) {
          kp.failed.insert(j);
          if (!call.transport_failure) last_err = call.st;
          continue;
        }
        const auto& r = call.Resp<pb::EcWriteResponse>();
        if (r.accepted()) {
          accepted++;
          ok_units.push_back(j);
          continue;
        }
        switch (ClassifyRefusal(call, p.ver)) {
          case Refusal::kRival:
            rivals++;
            kp.again.push_back({j, &call});
            break;
          case Refusal::kAhead:
            rivals++;
            kp.failed.insert(j);
            break;
          case Refusal::kRebase:
          case Refusal::kLate:
            kp.again.push_back({j, &call});
            break;
          case Refusal::kBehind:
            kp.failed.insert(j);
            break;
        }
      }
      if (accepted >= k && (rivals == 0 || accepted > m)) {
        if (rivals > 0) EcCounter("write_conflict_won")++;
        kept.push_back(std::move(kp));
        continue;
      }
      const bool refused = rivals > 0;
      // Another writer won, or too few units took it: undo ours, retry.
      retry = true;
      EcCounter(refused ? "write_conflict" : "write_short")++;
      if (!refused && last_err.ok())
        last_err = Status::IOError("stripe " + std::to_string(s.stripe) + " of ino " + std::to_string(ino) +
                                   ": only " + std::to_string(accepted) + " of " + std::to_string(w) +
                                   " units took the write (need " + std::to_string(k) + ")");
      for (uint32_t j : ok_units)
        undo.push_back(calls_.Rollback(ino, s.view.target_id[j], s.view.local_index[j], unit, p.ver));
    }
    if (!undo.empty()) {
      std::vector<EcCall*> b;
      for (auto& c : undo) b.push_back(c.get());
      calls_.Run(b);
    }
    // Units a rival held: once its writer gives it up, our request applies
    // as it stands, so send it again until it lands, for up to
    // kLeftoverGrace. The same for a unit one write behind our base (that
    // write is still on its way there). A whole unit goes to a unit behind on
    // top of what it holds. What does not land counts as a unit that missed
    // the write.
    const auto resend_by = std::chrono::steady_clock::now() + kLeftoverGrace;
    std::vector<std::unique_ptr<EcCall>> resent;  // keeps the latest round alive
    for (int resends = 0;;) {
      bool any = false;
      for (auto& kp : kept) any |= !kp.again.empty();
      if (!any) break;
      if (std::chrono::steady_clock::now() > resend_by) {
        for (auto& kp : kept) {
          for (auto& r : kp.again) kp.failed.insert(r.first);
          kp.again.clear();
        }
        break;
      }
      std::vector<std::unique_ptr<EcCall>> round;
      std::vector<EcCall*> b;
      bool pause = false;
      for (auto& kp : kept)
        for (auto& [j, c] : kp.again) {
          const pb::UnitVersion cur = c->Resp<pb::EcWriteResponse>().cur();
          const bool rebase = ClassifyRefusal(*c, kp.ver) == Refusal::kRebase;
          pause |= !rebase;
          round.push_back(calls_.Again(*c));
          if (rebase) *round.back()->Req<pb::EcWriteRequest>().mutable_base() = cur;
          c = round.back().get();
          b.push_back(c);
        }
      // 2 ms while a rival's undo or a late write is due (tens of ms), then
      // longer: a unit that never comes back should not cost hundreds of calls.
      if (pause) std::this_thread::sleep_for(std::chrono::milliseconds(2 << std::min(resends / 16, 3)));
      resends++;
      calls_.Run(b);
      for (auto& kp : kept) {
        std::vector<std::pair<uint32_t, EcCall*>> still;
        for (auto& [j, c] : kp.again) {
          if (c->st.ok() && c->Resp<pb::EcWriteResponse>().accepted()) continue;
          if (c->st.ok() && WaitFor(ClassifyRefusal(*c, kp.ver))) still.push_back({j, c});
          else kp.failed.insert(j);
        }
        kp.again = std::move(still);
      }
      resent = std::move(round);
    }
    // Others roll back a unit that stays newer than the stripe's consistent
    // version for kLeftoverGrace. A write that landed within half of that
    // cannot have been hit (and once k units hold it, it is consistent); a
    // slower one looks again and redoes what lost its k holders.
    if (!kept.empty() && std::chrono::steady_clock::now() - sent >= kLeftoverGrace / 2) {
      std::vector<StripeView*> vs;
      for (auto& kp : kept) vs.push_back(&kp.s->view);
      FetchStates(calls_, ino, l, vs);
      std::vector<std::unique_ptr<EcCall>> lost_undo;
      for (auto it = kept.begin(); it != kept.end();) {
        // Units past our version count too: others built on it meanwhile.
        uint32_t holders = 0;
        for (const auto& u : it->s->view.state)
          holders += (u.CanServe(it->ver) || (u.known && !u.damaged && u.cur.seq() > it->ver.seq())) ? 1 : 0;
        if (holders >= k) {
          ++it;
          continue;
        }
        EcCounter("write_lost_to_rollback")++;
        LOG_WARN("ino {} stripe {}: slow write {} kept by only {} unit(s) (rolled back by others): redoing it",
                 ino, it->s->stripe, VersionString(it->ver), holders);
        for (uint32_t j = 0; j < w; j++)
          if (it->s->view.state[j].known && VersionEq(it->s->view.state[j].cur, it->ver))
            lost_undo.push_back(calls_.Rollback(ino, it->s->view.target_id[j], it->s->view.local_index[j], unit,
                                                it->ver));
        it = kept.erase(it);
        retry = true;
      }
      std::vector<EcCall*> b;
      for (auto& c : lost_undo) b.push_back(c.get());
      calls_.Run(b);
    }
    for (auto& kp : kept) {
      kp.s->done = true;
      RememberVersion(ino, kp.s->stripe, kp.ver);
      for (uint32_t j : kp.failed) degraded->insert(kp.s->view.target_id[j]);
      if (!kp.failed.empty())
        LOG_DEBUG("ino {} stripe {}: written degraded without {} unit(s)", ino, kp.s->stripe, kp.failed.size());
    }
    if (retry && !guess) Backoff(attempt);
    guess = false;
  }
  return last_err.ok() ? Status(EBUSY, "stripe write of ino " + std::to_string(ino) + " did not settle")
                       : last_err;
}

pb::UnitVersion EcIo::CachedVersion(uint64_t ino, uint64_t stripe) {
  std::lock_guard<std::mutex> g(vmu_);
  auto it = versions_.find({ino, stripe});
  return it == versions_.end() ? pb::UnitVersion() : it->second;
}

void EcIo::RememberVersion(uint64_t ino, uint64_t stripe, const pb::UnitVersion& v) {
  std::lock_guard<std::mutex> g(vmu_);
  if (versions_.size() >= kMaxCachedVersions && !versions_.count({ino, stripe}))
    versions_.erase(versions_.begin());
  versions_[{ino, stripe}] = v;
}

Status EcIo::Read(uint64_t ino, const Layout& l, char* buf, uint64_t off, uint64_t len) {
  if (len == 0) return Status::OK();
  CFS_ASSIGN_OR_RETURN(auto codec, ec::GetCodec(l.k, l.m));
  const uint32_t k = l.k, w = l.width(), unit = l.unit;
  auto extents = MapRange(l, off, len);
  struct StripeRead {
    StripeView view;
    std::vector<size_t> ext;  // indexes into extents
    std::vector<std::unique_ptr<EcCall>> data, parity;
  };
  std::map<uint64_t, StripeRead> stripes;
  for (size_t i = 0; i < extents.size(); i++) {
    auto& sr = stripes[extents[i].stripe];
    if (sr.ext.empty()) sr.view = DescribeStripe(l, extents[i].stripe);
    sr.ext.push_back(i);
  }
  std::vector<EcCall*> batch;
  for (auto& [s, sr] : stripes) {
    for (size_t i : sr.ext) {
      const UnitExtent& e = extents[i];
      uint32_t in_unit = static_cast<uint32_t>(e.local_offset % unit);
      sr.data.push_back(calls_.Read(ino, sr.view.target_id[e.unit_index], sr.view.local_index[e.unit_index],
                                    unit, in_unit, e.length, pb::UnitVersion(), buf + (e.file_offset - off)));
      batch.push_back(sr.data.back().get());
    }
    for (uint32_t j = k; j < w; j++) {
      sr.parity.push_back(calls_.Versions(ino, sr.view.target_id[j], sr.view.local_index[j], 1, unit));
      batch.push_back(sr.parity.back().get());
    }
  }
  calls_.Run(batch);
  for (auto& [s, sr] : stripes) {
    bool good = true;
    pb::UnitVersion ver;
    std::set<uint32_t> corrupt;
    for (size_t x = 0; x < sr.data.size(); x++) {
      EcCall& c = *sr.data[x];
      if (!c.st.ok()) {
        good = false;
        if (c.st.err() == EBADMSG) corrupt.insert(extents[sr.ext[x]].unit_index);
        continue;
      }
      const auto& v = c.Resp<pb::EcReadResponse>().version();
      if (x == 0) ver = v;
      else if (!VersionEq(v, ver)) good = false;
      uint64_t got = c.bulk_in_len(), want = extents[sr.ext[x]].length;
      if (got < want) std::memset(buf + (extents[sr.ext[x]].file_offset - off) + got, 0, want - got);
    }
    for (auto& p : sr.parity) {
      if (!p->st.ok()) continue;
      auto& r = p->Resp<pb::EcVersionsResponse>();
      if (r.units_size() < 1 || r.units(0).damaged() || !VersionEq(r.units(0).cur(), ver)) good = false;
    }
    if (good) continue;
    // Degraded: decode what the direct reads could not give at the consistent
    // version, reusing the direct reads that hold it. The states come from the
    // first round; a full EC_VERSIONS round only when they do not suffice.
    EcCounter("degraded_read")++;
    for (uint32_t j = 0; j < w; j++) sr.view.state[j] = UnitState{};
    for (size_t x = 0; x < sr.data.size(); x++) {
      uint32_t j = extents[sr.ext[x]].unit_index;
      if (!sr.data[x]->st.ok()) continue;
      sr.view.state[j].known = true;
      sr.view.state[j].cur = sr.data[x]->Resp<pb::EcReadResponse>().version();
    }
    for (uint32_t i = 0; i < w - k; i++) {
      auto& p = *sr.parity[i];
      if (!p.st.ok() || p.Resp<pb::EcVersionsResponse>().units_size() < 1) continue;
      const auto& u = p.Resp<pb::EcVersionsResponse>().units(0);
      UnitState& us = sr.view.state[k + i];
      us.known = true;
      us.damaged = u.damaged();
      us.cur = u.cur();
      us.prev = u.prev();
    }
    pb::UnitVersion cv;
    if (!ConsistentVersion(sr.view, k, &cv)) {
      // Writers in flight on this stripe can leave no version on k units for
      // a moment: look again a few times before calling it unreadable.
      bool found = false;
      for (int attempt = 0; !found && attempt < kStripeReadRetries; attempt++) {
        if (attempt > 0) Backoff(attempt);
        FetchStates(calls_, ino, l, {&sr.view});
        found = ConsistentVersion(sr.view, k, &cv);
      }
      if (!found)
        return Status::IOError("stripe " + std::to_string(s) + " of ino " + std::to_string(ino) +
                               ": fewer than k=" + std::to_string(k) + " units readable");
    }
    for (size_t x = 0; x < sr.ext.size(); x++) {
      const UnitExtent& e = extents[sr.ext[x]];
      if (sr.data[x]->st.ok() && VersionEq(sr.data[x]->Resp<pb::EcReadResponse>().version(), cv)) continue;
      uint32_t a = static_cast<uint32_t>(e.local_offset % unit);
      // Other units' direct reads that cover [a, a+len) at cv serve as sources.
      std::map<uint32_t, const char*> known;
      for (size_t y = 0; y < sr.ext.size(); y++) {
        const UnitExtent& o = extents[sr.ext[y]];
        uint32_t oa = static_cast<uint32_t>(o.local_offset % unit);
        if (y == x || !sr.data[y]->st.ok() || !VersionEq(sr.data[y]->Resp<pb::EcReadResponse>().version(), cv))
          continue;
        if (oa <= a && oa + o.length >= a + e.length)
          known[o.unit_index] = buf + (o.file_offset - off) + (a - oa);
      }
      ReadReport rep;
      Status rs = ReadUnitsAt(calls_, *codec, ino, l, sr.view, cv, a, a + e.length, {e.unit_index},
                              {buf + (e.file_offset - off)}, corrupt, &rep, static_cast<uint32_t>(s), &known);
      // The first round's view may be too thin, and writers in flight move the
      // stripe on while it is read (the slot that held cv is reused): look at
      // every unit again and read at the version they hold now.
      for (int attempt = 0; !rs.ok() && attempt < kStripeReadRetries; attempt++) {
        if (attempt > 0) Backoff(attempt);
        FetchStates(calls_, ino, l, {&sr.view});
        if (!ConsistentVersion(sr.view, k, &cv)) continue;
        rep = ReadReport{};
        rs = ReadUnitsAt(calls_, *codec, ino, l, sr.view, cv, a, a + e.length, {e.unit_index},
                         {buf + (e.file_offset - off)}, corrupt, &rep, static_cast<uint32_t>(s));
      }
      CFS_RETURN_IF_ERROR(rs);
      for (uint32_t j : rep.corrupt) corrupt.insert(j);
      for (uint32_t j : corrupt)
        if (j == e.unit_index || rep.corrupt.count(j)) {
          uint32_t lo = a & ~(kChecksumBlock - 1);
          uint32_t hi = std::min<uint32_t>(unit, (a + e.length + kChecksumBlock - 1) & ~(kChecksumBlock - 1));
          if (!sr.view.state[j].known || sr.view.state[j].cur.seq() == 0) FetchStates(calls_, ino, l, {&sr.view});
          RepairCorrupt(ino, l, *codec, sr.view, cv, j, lo, hi);
        }
    }
  }
  return Status::OK();
}

void EcIo::RepairCorrupt(uint64_t ino, const Layout& l, const ec::ErasureCodec& codec,
                         const StripeView& view, const pb::UnitVersion& ver, uint32_t j, uint32_t lo,
                         uint32_t hi) {
  if (!view.state[j].known || !VersionEq(view.state[j].cur, ver)) return;  // only the current version
  std::unique_ptr<char[]> fixed(new char[hi - lo]);
  Status st = ReadUnitsAt(calls_, codec, ino, l, view, ver, lo, hi, {j}, {fixed.get()}, {j}, nullptr, j + 1);
  if (st.ok()) {
    auto c = calls_.Write(ino, view.target_id[j], view.local_index[j], l.unit, ver, ver, pb::EC_RANGE, lo,
                          hi - lo, fixed.get());
    calls_.Run({c.get()});
    st = c->st;
    if (st.ok() && !c->Resp<pb::EcWriteResponse>().accepted()) st = Status(EAGAIN, "unit changed meanwhile");
  }
  if (st.ok()) {
    EcCounter("repaired_on_read")++;
    LOG_WARN("repaired ino {} stripe {} unit {} bytes [{}, {}) on target {} from redundancy", ino,
             view.stripe, j, lo, hi, view.target_id[j]);
  } else {
    LOG_WARN("could not repair ino {} stripe {} unit {} on target {}: {}", ino, view.stripe, j,
             view.target_id[j], st.ToString());
  }
}

Status EcIo::ObjectOnAll(pb::Method method, uint64_t ino, const Layout& l,
                         const std::function<uint64_t(uint32_t)>& size_of, std::set<uint32_t>* missed) {
  std::vector<std::unique_ptr<EcCall>> owned;
  std::vector<EcCall*> batch;
  for (uint32_t t = 0; t < l.n(); t++) {
    owned.push_back(calls_.Object(method, ino, l.targets[t], size_of ? size_of(t) : 0, l.unit));
    batch.push_back(owned.back().get());
  }
  calls_.Run(batch);
  Status first;
  for (auto& c : owned)
    if (!c->st.ok()) {
      missed->insert(c->target_id);
      if (first.ok()) first = c->st;
    }
  if (missed->size() > l.m)
    return Status(first.err(), pb::Method_Name(method) + " failed on " + std::to_string(missed->size()) +
                                   " of " + std::to_string(l.n()) + " targets (parity " + std::to_string(l.m) +
                                   "): " + first.message());
  if (!missed->empty())
    LOG_DEBUG("{} of ino {}: {} target(s) down, tolerated", pb::Method_Name(method), ino, missed->size());
  return Status::OK();
}

Status EcIo::AllTargets(pb::Method method, uint64_t ino, const Layout& l) {
  std::set<uint32_t> missed;
  return ObjectOnAll(method, ino, l, nullptr, &missed);
}

Status EcIo::Truncate(uint64_t ino, const Layout& l, uint64_t size) {
  const uint64_t sb = l.stripe_bytes();
  const uint64_t keep = (size + sb - 1) / sb;  // stripes kept
  if (size % sb) {
    uint64_t end = keep * sb;
    std::unique_ptr<char[]> zeros(new char[end - size]());
    CFS_RETURN_IF_ERROR(Write(ino, l, zeros.get(), size, end - size));
  }
  std::set<uint32_t> missed;
  // Units of the stripes < keep on each target.
  CFS_RETURN_IF_ERROR(ObjectOnAll(pb::TRUNCATE_OBJECT, ino, l,
                                  [&](uint32_t t) { return LocalUnitIndex(l, keep, t) * l.unit; }, &missed));
  ReportDegraded(ino, missed);
  return Status::OK();
}

}  // namespace cfs::client
