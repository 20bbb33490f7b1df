// The real Repairer (client/repair.h): resync and scrub of parity layouts,
// stripe by stripe, several stripes in flight, on the EcIo building blocks.
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

#include "client/cluster_map.h"
#include "client/ec_io.h"
#include "client/meta_client.h"
#include "client/repair.h"
#include "client/task_pool.h"
#include "common/logging.h"

namespace cfs::client {
namespace {

constexpr int kStripesInFlight = 4;

class EcRepairer : public Repairer {
 public:
  EcRepairer(std::shared_ptr<rpc::Transport> meta_transport,
             std::shared_ptr<rpc::Transport> data_transport, rpc::Endpoint meta_ep)
      : meta_(std::move(meta_transport), {meta_ep}, std::chrono::seconds(30), std::chrono::seconds(10)),
        map_(&meta_, std::chrono::seconds(2)),
        pool_(std::move(data_transport), 2),
        io_(&pool_, &map_, &meta_, std::chrono::milliseconds(5000)),
        tasks_(kStripesInFlight) {}

  Status ResyncTarget(uint64_t ino, const Layout& l, uint32_t t, uint64_t file_size,
                      RepairStats* stats, const RepairPace& pace) override {
    if (l.m == 0) return Status::OK();
    CFS_RETURN_IF_ERROR(l.Validate());
    if (t >= l.n()) return Status::Invalid("target index out of the layout");
    return ForStripes(ino, l, file_size, stats, pace, [&](uint64_t s, RepairStats* st) -> Result<uint64_t> {
      uint32_t j = static_cast<uint32_t>((t + l.n() - s % l.n()) % l.n());
      if (j >= l.width()) return uint64_t{0};  // t holds no unit of this stripe
      return ResyncUnit(ino, l, s, j, st);
    });
  }

  Status Scrub(uint64_t ino, const Layout& l, uint64_t file_size, RepairStats* stats,
               const RepairPace& pace) override {
    if (l.m == 0) return Status::OK();
    CFS_RETURN_IF_ERROR(l.Validate());
    return ForStripes(ino, l, file_size, stats, pace, [&](uint64_t s, RepairStats* st) -> Result<uint64_t> {
      return ScrubStripe(ino, l, s, st);
    });
  }

 private:
  using StripeFn = std::function<Result<uint64_t>(uint64_t stripe, RepairStats*)>;

  // Runs fn over the file's stripes, kStripesInFlight at a time; fn returns
  // the bytes it moved. The first error is returned after the pass.
  // Stripes to visit: those below the size the M-worker knows, and those any
  // target has version records for (data can be ahead of the reported size).
  uint64_t StripeBound(uint64_t ino, const Layout& l, uint64_t file_size) {
    uint64_t stripes = (file_size + l.stripe_bytes() - 1) / l.stripe_bytes();
    std::vector<std::unique_ptr<EcCall>> owned;
    std::vector<EcCall*> batch;
    for (uint32_t t = 0; t < l.n(); t++) {
      owned.push_back(io_.calls().Versions(ino, l.targets[t], 0, 0, l.unit));
      batch.push_back(owned.back().get());
    }
    io_.calls().Run(batch);
    for (auto& c : owned) {
      if (!c->st.ok()) continue;
      uint64_t units = c->Resp<pb::EcVersionsResponse>().recorded_units();
      if (units == 0) continue;
      // Local unit i belongs to a stripe below about i*n/w (+n for the window).
      uint64_t bound = l.n() == l.width() ? units : units * l.n() / l.width() + l.n();
      stripes = std::max(stripes, bound);
    }
    return stripes;
  }

  Status ForStripes(uint64_t ino, const Layout& l, uint64_t file_size, RepairStats* stats,
                    const RepairPace& pace, const StripeFn& fn) {
    const uint64_t stripes = StripeBound(ino, l, file_size);
    std::mutex mu;
    Status first;
    for (uint64_t s0 = 0; s0 < stripes; s0 += kStripesInFlight) {
      std::vector<std::future<Status>> fs;
      std::vector<RepairStats> local(kStripesInFlight);
      std::vector<uint64_t> moved(kStripesInFlight, 0);
      for (uint64_t i = 0; i < kStripesInFlight && s0 + i < stripes; i++) {
        fs.push_back(tasks_.Submit([&, i] {
          auto r = fn(s0 + i, &local[i]);
          if (!r.ok()) return r.status();
          moved[i] = *r;
          return Status::OK();
        }));
      }
      uint64_t bytes = 0;
      for (size_t i = 0; i < fs.size(); i++) {
        Status st = fs[i].get();
        std::lock_guard<std::mutex> g(mu);
        Add(stats, local[i]);
        bytes += moved[i];
        if (!st.ok() && first.ok()) first = st;
      }
      if (pace && !pace(bytes)) return Status(ECANCELED, "stopped");
    }
    return first;
  }

  static void Add(RepairStats* to, const RepairStats& from) {
    if (!to) return;
    to->stripes_checked += from.stripes_checked;
    to->units_repaired += from.units_repaired;
    to->bytes_read += from.bytes_read;
    to->bytes_written += from.bytes_written;
    to->checksum_errors += from.checksum_errors;
    to->parity_mismatches += from.parity_mismatches;
    to->unrepairable += from.unrepairable;
    to->targets_repaired.insert(from.targets_repaired.begin(), from.targets_repaired.end());
  }

  // Settles a stripe's state for repair: the consistent version, with
  // incomplete newer units rolled back. Nothing to do: ver.seq == 0.
  Status Settle(uint64_t ino, const Layout& l, StripeView* view, pb::UnitVersion* ver, RepairStats* st) {
    // Newer units may be a client's write in flight: each is given
    // kRepairLeftoverGrace from when it was first seen before it is taken for
    // the leftover of a dead writer and rolled back.
    // A leftover that a rollback could not undo (no previous version kept)
    // is left to the caller, which rewrites or empties it.
    SightingClock seen;
    std::set<std::tuple<uint32_t, uint64_t, uint64_t>> undone;
    const auto give_up = std::chrono::steady_clock::now() + kSettleLimit;
    for (;;) {
      FetchStates(io_.calls(), ino, l, {view});
      if (!ConsistentVersion(*view, l.k, ver)) {
        st->unrepairable++;
        return Status::IOError("ino " + std::to_string(ino) + " stripe " + std::to_string(view->stripe) +
                               ": fewer than k=" + std::to_string(l.k) + " units readable");
      }
      std::vector<std::unique_ptr<EcCall>> rb;
      bool newer = false;
      for (uint32_t j = 0; j < l.width(); j++) {
        const UnitState& u = view->state[j];
        if (!u.known || u.damaged || !VersionLess(*ver, u.cur)) continue;
        if (undone.count({j, u.cur.seq(), u.cur.tag()})) continue;
        newer = true;
        if (seen.Age(view->stripe, j, u.cur) >= kRepairLeftoverGrace) {
          rb.push_back(io_.calls().Rollback(ino, view->target_id[j], view->local_index[j], l.unit, u.cur));
          undone.insert({j, u.cur.seq(), u.cur.tag()});
        }
      }
      if (!newer) return Status::OK();
      if (std::chrono::steady_clock::now() > give_up)
        return Status(EBUSY, "ino " + std::to_string(ino) + " stripe " + std::to_string(view->stripe) +
                                 ": writers kept it moving for " + std::to_string(kSettleLimit.count()) + " s");
      if (rb.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        continue;
      }
      std::vector<EcCall*> b;
      for (auto& c : rb) b.push_back(c.get());
      io_.calls().Run(b);
    }
  }

  // Makes unit j never written: the stripe's consistent version is {0,0}, so
  // whatever it holds is the leftover of a truncate it missed or of a first
  // write that never completed.
  Status Empty(uint64_t ino, const Layout& l, const StripeView& view, uint32_t j, RepairStats* st) {
    auto c = io_.calls().Rollback(ino, view.target_id[j], view.local_index[j], l.unit, view.state[j].cur, true);
    io_.calls().Run({c.get()});
    if (!c->st.ok())
      return Status(c->st.err(), "emptying unit " + std::to_string(j) + " of stripe " +
                                     std::to_string(view.stripe) + " on target " +
                                     std::to_string(view.target_id[j]) + ": " + c->st.message());
    st->units_repaired++;
    st->targets_repaired.insert(view.target_id[j]);
    return Status::OK();
  }

  // Decodes unit j at ver from the others and writes it over whatever it holds.
  Status Rewrite(uint64_t ino, const Layout& l, const ec::ErasureCodec& codec, const StripeView& view,
                 const pb::UnitVersion& ver, uint32_t j, RepairStats* st, const char* content) {
    std::unique_ptr<char[]> buf;
    if (!content) {
      buf.reset(new char[l.unit]);
      CFS_RETURN_IF_ERROR(ReadUnitsAt(io_.calls(), codec, ino, l, view, ver, 0, l.unit, {j}, {buf.get()},
                                      {j}, nullptr, static_cast<uint32_t>(view.stripe)));
      st->bytes_read += uint64_t(l.k) * l.unit;
      content = buf.get();
    }
    const UnitState& u = view.state[j];
    pb::UnitVersion base = (u.known && !u.damaged) ? u.cur : pb::UnitVersion();
    auto c = io_.calls().Write(ino, view.target_id[j], view.local_index[j], l.unit, base, ver, pb::EC_FULL, 0,
                               l.unit, content);
    io_.calls().Run({c.get()});
    if (!c->st.ok()) return Status(c->st.err(), "writing unit " + std::to_string(j) + " of stripe " +
                                                    std::to_string(view.stripe) + " to target " +
                                                    std::to_string(view.target_id[j]) + ": " + c->st.message());
    if (!c->Resp<pb::EcWriteResponse>().accepted())
      return Status(EAGAIN, "stripe " + std::to_string(view.stripe) + " changed during repair");
    st->units_repaired++;
    st->targets_repaired.insert(view.target_id[j]);
    st->bytes_written += l.unit;
    return Status::OK();
  }

  Result<uint64_t> ResyncUnit(uint64_t ino, const Layout& l, uint64_t s, uint32_t j, RepairStats* st) {
    CFS_ASSIGN_OR_RETURN(auto codec, ec::GetCodec(l.k, l.m));
    std::lock_guard<std::mutex> g(io_.StripeLock(ino, s));
    StripeView view = DescribeStripe(l, s);
    pb::UnitVersion ver;
    CFS_RETURN_IF_ERROR(Settle(ino, l, &view, &ver, st));
    st->stripes_checked++;
    const UnitState& u = view.state[j];
    if (!u.known) return Status::Unavailable("target " + std::to_string(view.target_id[j]) + " does not answer");
    if (ver.seq() == 0) {  // a stripe never written (or truncated away)
      if (!u.damaged && u.cur.seq() == 0) return uint64_t{0};
      CFS_RETURN_IF_ERROR(Empty(ino, l, view, j, st));
      return uint64_t{0};
    }
    if (!u.damaged && VersionEq(u.cur, ver)) return uint64_t{0};                // in sync
    CFS_RETURN_IF_ERROR(Rewrite(ino, l, *codec, view, ver, j, st, nullptr));
    return uint64_t{l.unit};  // bytes rebuilt: what --rebuild-rate and progress count
  }

  Result<uint64_t> ScrubStripe(uint64_t ino, const Layout& l, uint64_t s, RepairStats* st) {
    CFS_ASSIGN_OR_RETURN(auto codec, ec::GetCodec(l.k, l.m));
    std::lock_guard<std::mutex> g(io_.StripeLock(ino, s));
    const uint32_t k = l.k, w = l.width(), unit = l.unit;
    StripeView view = DescribeStripe(l, s);
    pb::UnitVersion ver;
    CFS_RETURN_IF_ERROR(Settle(ino, l, &view, &ver, st));
    st->stripes_checked++;
    if (ver.seq() == 0) {  // never written or truncated away: leftovers are emptied
      for (uint32_t j = 0; j < w; j++) {
        const UnitState& u = view.state[j];
        if (u.known && (u.damaged || u.cur.seq() != 0)) CFS_RETURN_IF_ERROR(Empty(ino, l, view, j, st));
      }
      return uint64_t{0};
    }
    // Read every unit that should hold ver.
    std::vector<std::unique_ptr<char[]>> bufs(w);
    std::vector<std::unique_ptr<EcCall>> calls(w);
    std::vector<EcCall*> batch;
    for (uint32_t j = 0; j < w; j++) {
      if (!view.state[j].CanServe(ver)) continue;
      bufs[j].reset(new char[unit]);
      calls[j] = io_.calls().Read(ino, view.target_id[j], view.local_index[j], unit, 0, unit, ver, bufs[j].get());
      batch.push_back(calls[j].get());
    }
    io_.calls().Run(batch);
    std::vector<bool> good(w, false);
    std::vector<uint32_t> bad;  // units to rewrite
    uint64_t moved = 0;
    for (uint32_t j = 0; j < w; j++) {
      if (calls[j] && calls[j]->st.ok()) {
        uint64_t got = calls[j]->bulk_in_len();
        if (got < unit) std::memset(bufs[j].get() + got, 0, unit - got);
        good[j] = true;
        moved += unit;
        continue;
      }
      if (calls[j] && calls[j]->st.err() == EBADMSG) st->checksum_errors++;
      const UnitState& u = view.state[j];
      if (!u.known || (calls[j] && calls[j]->transport_failure)) continue;  // down: rebuild's job
      bad.push_back(j);  // corrupt, damaged or stale
    }
    st->bytes_read += moved;
    uint32_t ngood = 0;
    for (bool b : good) ngood += b ? 1 : 0;
    if (ngood < k) {
      st->unrepairable++;
      return Status::IOError("ino " + std::to_string(ino) + " stripe " + std::to_string(s) + ": only " +
                             std::to_string(ngood) + " good units");
    }
    // Parity check: with every data unit good, re-encode and compare.
    bool data_good = true;
    for (uint32_t j = 0; j < k; j++) data_good = data_good && good[j];
    std::vector<std::unique_ptr<uint8_t[]>> parity(l.m);
    if (data_good) {
      std::vector<const uint8_t*> d(k);
      std::vector<uint8_t*> p(l.m);
      for (uint32_t j = 0; j < k; j++) d[j] = reinterpret_cast<const uint8_t*>(bufs[j].get());
      for (uint32_t i = 0; i < l.m; i++) {
        parity[i].reset(new uint8_t[unit]);
        p[i] = parity[i].get();
      }
      codec->Encode(d.data(), p.data(), unit);
      bool mismatch = false;
      for (uint32_t i = 0; i < l.m; i++) {
        uint32_t j = k + i;
        if (good[j] && std::memcmp(parity[i].get(), bufs[j].get(), unit) != 0) {
          mismatch = true;
          good[j] = false;
          bad.push_back(j);
        }
      }
      if (mismatch) {
        st->parity_mismatches++;
        LOG_WARN("scrub: ino {} stripe {}: parity disagrees with the data; re-encoding it", ino, s);
      }
    }
    Status first;
    for (uint32_t j : bad) {
      const char* content = nullptr;
      if (j >= k && data_good) content = reinterpret_cast<const char*>(parity[j - k].get());
      if (!content) {
        // Decode from k good units.
        std::vector<uint32_t> present;
        std::vector<const uint8_t*> in;
        for (uint32_t x = 0; x < w && present.size() < k; x++)
          if (good[x]) {
            present.push_back(x);
            in.push_back(reinterpret_cast<const uint8_t*>(bufs[x].get()));
          }
        if (!bufs[j]) bufs[j].reset(new char[unit]);
        uint8_t* out = reinterpret_cast<uint8_t*>(bufs[j].get());
        Status ds = codec->Decode(present, in.data(), {j}, &out, unit);
        if (!ds.ok()) {
          if (first.ok()) first = ds;
          continue;
        }
        content = bufs[j].get();
      }
      Status ws = Rewrite(ino, l, *codec, view, ver, j, st, content);
      if (ws.ok()) {
        moved += unit;
        LOG_WARN("scrub: repaired ino {} stripe {} unit {} on target {}", ino, s, j, view.target_id[j]);
      } else if (first.ok()) {
        first = ws;
      }
    }
    if (!first.ok()) return first;
    return moved;
  }

  MetaClient meta_;
  ClusterMapCache map_;
  rpc::ChannelPool pool_;
  EcIo io_;
  TaskPool tasks_;
};

}  // namespace

Result<std::unique_ptr<Repairer>> NewRepairer(const std::string& meta_addr, const std::string& transport,
                                              const std::string& rdma_device) {
  CFS_ASSIGN_OR_RETURN(rpc::Endpoint ep, rpc::Endpoint::Parse(meta_addr));
  // The M-worker serves TCP only (small messages, no bulk).
  CFS_ASSIGN_OR_RETURN(std::shared_ptr<rpc::Transport> meta_transport, rpc::MakeTransport("tcp"));
  auto data = rpc::MakeTransport(transport, rdma_device);
  if (!data.ok())
    return Status(data.status().err(), "repairer data transport " + transport + ": " + data.status().message());
  return std::unique_ptr<Repairer>(
      std::make_unique<EcRepairer>(std::move(meta_transport), std::move(*data), std::move(ep)));
}

}  // namespace cfs::client
