// The M-worker's side of redundancy (docs/erasure-coding.md, "Redundancy
// management") over real RocksDB and the real meta service on 127.0.0.1:
// k+m placement, retired targets, REPORT_DEGRADED persistence, retirement of a
// down target (spares swapped into layouts), the rebuild drain and its
// running/idle state, and scrub passes. The data mover is a recording
// client::Repairer injected through MetaOptions::repairer_factory (the real
// one is covered by the integration tests); what is asserted is what the
// manager asks of it and what it does with the answers.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "meta_service.h"
#include "rocks_namespace.h"
#include "rpc/tcp_transport.h"

namespace cfs::meta {
namespace {

using namespace std::chrono_literals;

uint16_t PickPort(int salt) { return static_cast<uint16_t>(20000 + (getpid() * 13 + salt * 97) % 20000); }

struct ResyncCall {
  uint64_t ino;
  uint32_t target;  // l.targets[t]
  uint32_t index;
  uint64_t size;
  Layout layout;
};

// Shared by the Repairers the managers create.
struct Recorder {
  std::mutex mu;
  std::vector<ResyncCall> resyncs;
  std::vector<uint64_t> scrubbed;
  std::set<uint64_t> fail_inos;  // ResyncTarget answers EIO for these
  int repairers_made = 0;
};

class RecordingRepairer : public client::Repairer {
 public:
  explicit RecordingRepairer(std::shared_ptr<Recorder> r) : r_(std::move(r)) {}
  Status ResyncTarget(uint64_t ino, const Layout& l, uint32_t t, uint64_t file_size,
                      client::RepairStats* stats, const client::RepairPace& pace) override {
    {
      std::lock_guard g(r_->mu);
      r_->resyncs.push_back({ino, t < l.targets.size() ? l.targets[t] : 0, t, file_size, l});
      if (r_->fail_inos.count(ino)) return Status::IOError("injected failure");
    }
    stats->stripes_checked++;
    stats->units_repaired++;
    if (!pace(l.unit)) return Status(ECANCELED, "stopped");
    return Status::OK();
  }
  Status Scrub(uint64_t ino, const Layout& l, uint64_t, client::RepairStats* stats,
               const client::RepairPace& pace) override {
    {
      std::lock_guard g(r_->mu);
      r_->scrubbed.push_back(ino);
    }
    stats->stripes_checked += 2;
    stats->checksum_errors += ino % 2;  // odd inodes "had" a bad block
    stats->units_repaired += ino % 2;
    if (!pace(l.unit)) return Status(ECANCELED, "stopped");
    return Status::OK();
  }

 private:
  std::shared_ptr<Recorder> r_;
};

class MetaRedundancyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cfs-metared-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    transport_ = rpc::NewTcpTransport();
    rec_ = std::make_shared<Recorder>();
    StartMeta();
    pump_ = std::thread([this] { Pump(); });
  }
  void TearDown() override {
    stop_pump_ = true;
    pump_.join();
    if (svc_) StopMeta();
    std::filesystem::remove_all(dir_);
  }
  void StartMeta() {
    auto ns = RocksNamespace::Open(dir_ + "/db", RocksOptions());
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    ns_ = std::move(ns).value();
    MetaOptions mo;
    mo.heartbeat_timeout = 1000ms;
    mo.orphan_grace = 0ms;
    mo.rebuild.rebuild_after = 0s;  // only on request
    mo.rebuild.rate_bytes_per_s = 0;
    mo.rebuild.poll = 50ms;
    mo.scrub.rate_bytes_per_s = 0;
    auto rec = rec_;
    mo.repairer_factory = [rec](const std::string& addr) -> Result<std::unique_ptr<client::Repairer>> {
      if (addr.empty()) return Status::Invalid("no M-worker address given to the factory");
      std::lock_guard g(rec->mu);
      rec->repairers_made++;
      return std::unique_ptr<client::Repairer>(new RecordingRepairer(rec));
    };
    mport_ = 0;
    for (int i = 0; i < 20 && !mport_; i++) {
      svc_ = std::make_unique<MetaService>(ns_.get(), mo);
      uint16_t p = PickPort(i);
      if (svc_->Start("127.0.0.1", p).ok()) mport_ = p;
    }
    ASSERT_NE(mport_, 0);
    auto ch = transport_->Connect({"127.0.0.1", mport_}, 2000ms);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    std::lock_guard l(ch_mu_);
    meta_ = *ch;
  }
  void StopMeta() {
    {
      std::lock_guard l(ch_mu_);
      meta_.reset();
    }
    svc_->Stop();
    svc_.reset();
    ns_.reset();
  }
  Status Call(pb::Method m, const google::protobuf::Message& req, google::protobuf::Message* resp) {
    std::shared_ptr<rpc::Channel> ch;
    {
      std::lock_guard l(ch_mu_);
      ch = meta_;
    }
    if (!ch) return Status::Unavailable("meta stopped");
    rpc::CallSpec spec;
    spec.method = m;
    spec.request = &req;
    spec.response = resp;
    return ch->Call(spec);
  }
  // Worker w with one target; kept alive by the heartbeat pump until Kill(w).
  uint32_t Register(int w) {
    pb::RegisterWorkerRequest r;
    r.set_worker_uuid("worker-" + std::to_string(w));
    r.set_host("127.0.0.1");
    r.set_port(9000 + w);
    auto* ti = r.add_targets();
    ti->set_uuid("target-" + std::to_string(w));
    ti->set_capacity(100ull << 30);
    ti->set_free(50ull << 30);
    pb::RegisterWorkerResponse resp;
    Status s = Call(pb::REGISTER_WORKER, r, &resp);
    EXPECT_TRUE(s.ok()) << s.ToString();
    std::lock_guard l(pump_mu_);
    alive_[w] = resp.worker_id();
    target_of_[w] = resp.targets(0).id();
    return resp.targets(0).id();
  }
  void Kill(int w) {
    std::lock_guard l(pump_mu_);
    alive_.erase(w);
  }
  void Pump() {
    while (!stop_pump_) {
      std::map<int, uint32_t> alive;
      {
        std::lock_guard l(pump_mu_);
        alive = alive_;
      }
      for (auto& [w, id] : alive) {
        pb::HeartbeatRequest hb;
        hb.set_worker_id(id);
        pb::HeartbeatResponse resp;
        (void)Call(pb::HEARTBEAT, hb, &resp);
      }
      std::this_thread::sleep_for(100ms);
    }
  }
  Result<pb::Attr> Create(const std::string& name, uint32_t k, uint32_t m, uint64_t size = 0) {
    pb::CreateRequest r;
    r.set_parent(kRootIno);
    r.set_name(name);
    r.set_mode(S_IFREG | 0644);
    r.set_exclusive(true);
    r.mutable_layout_hint()->set_k(k);
    r.mutable_layout_hint()->set_m(m);
    pb::CreateResponse resp;
    CFS_RETURN_IF_ERROR(Call(pb::CREATE, r, &resp));
    if (size) {
      pb::ReportSizeRequest rs;
      rs.set_ino(resp.attr().ino());
      rs.set_size(size);
      pb::AttrResponse a;
      CFS_RETURN_IF_ERROR(Call(pb::REPORT_SIZE, rs, &a));
      return a.attr();
    }
    return resp.attr();
  }
  pb::Attr GetAttr(uint64_t ino) {
    pb::InoRequest r;
    r.set_ino(ino);
    pb::AttrResponse a;
    EXPECT_TRUE(Call(pb::GETATTR, r, &a).ok());
    return a.attr();
  }
  pb::ClusterMap Map() {
    pb::ClusterMap m;
    EXPECT_TRUE(Call(pb::GET_CLUSTER_MAP, pb::Empty(), &m).ok());
    return m;
  }
  pb::TargetInfo TargetOf(uint32_t id) {
    pb::ClusterMap m = Map();
    for (auto& t : m.targets())
      if (t.id() == id) return t;
    ADD_FAILURE() << "no target " << id;
    return {};
  }
  pb::RebuildStatusResponse RebuildStatus() {
    pb::RebuildStatusResponse r;
    Status s = Call(pb::REBUILD_STATUS, pb::Empty(), &r);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return r;
  }
  // Polls until pred holds; a generous deadline only guards against hangs.
  template <class Pred>
  bool WaitFor(Pred pred) {
    auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      if (pred()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return pred();
  }
  bool TargetUp(uint32_t id) { return TargetOf(id).up(); }

  std::string dir_;
  std::shared_ptr<rpc::Transport> transport_;
  std::shared_ptr<Recorder> rec_;
  uint16_t mport_ = 0;
  std::unique_ptr<RocksNamespace> ns_;
  std::unique_ptr<MetaService> svc_;
  std::mutex ch_mu_;
  std::shared_ptr<rpc::Channel> meta_;
  std::mutex pump_mu_;
  std::map<int, uint32_t> alive_;       // worker index -> worker id
  std::map<int, uint32_t> target_of_;   // worker index -> its target id
  std::atomic<bool> stop_pump_{false};
  std::thread pump_;
};

TEST_F(MetaRedundancyTest, Places4Plus2OnSixWorkersAndRefusesWithFive) {
  for (int w = 0; w < 5; w++) Register(w);
  auto refused = Create("f5", 4, 2);
  EXPECT_EQ(refused.status().err(), ENOSPC);
  EXPECT_NE(refused.status().message().find("4+2"), std::string::npos) << refused.status().message();
  EXPECT_NE(refused.status().message().find("only 5 up"), std::string::npos) << refused.status().message();
  Register(5);
  auto f = Create("f6", 4, 2);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->layout().k(), 4u);
  EXPECT_EQ(f->layout().m(), 2u);
  std::set<uint32_t> targets(f->layout().targets().begin(), f->layout().targets().end());
  EXPECT_EQ(targets.size(), 6u);
  // One per worker: each worker has one target, so distinct targets = distinct workers.
  std::set<uint32_t> workers;
  pb::ClusterMap map = Map();
  for (auto& t : map.targets())
    if (targets.count(t.id())) workers.insert(t.worker_id());
  EXPECT_EQ(workers.size(), 6u);
  // m beyond 4 is refused as a shape error.
  auto m5 = Create("m5", 1, 5);
  EXPECT_EQ(m5.status().err(), EINVAL) << m5.status().ToString();
}

TEST_F(MetaRedundancyTest, RetireSwapsASpareIntoEveryLayoutAndResyncsIt) {
  for (int w = 0; w < 8; w++) Register(w);
  std::vector<pb::Attr> files;
  for (int i = 0; i < 24; i++) {
    auto f = Create("f" + std::to_string(i), 4, 2, (i + 1) * 1000000ull);
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    files.push_back(*f);
  }
  auto plain = Create("plain", 8, 0, 123);  // m = 0, names every target, the victim too
  ASSERT_TRUE(plain.ok());
  // The victim: the first target of the first file.
  const uint32_t victim = files[0].layout().targets(0);
  int victim_worker = -1;
  for (auto& [w, t] : target_of_)
    if (t == victim) victim_worker = w;
  ASSERT_GE(victim_worker, 0);
  std::map<uint32_t, uint32_t> worker_of;
  pb::ClusterMap map = Map();
  for (auto& t : map.targets()) worker_of[t.id()] = t.worker_id();

  // An up target is not rebuilt elsewhere.
  pb::RebuildStartRequest start;
  start.set_target_id(victim);
  pb::Empty e;
  EXPECT_EQ(Call(pb::REBUILD_START, start, &e).err(), EBUSY);
  Kill(victim_worker);
  ASSERT_TRUE(WaitFor([&] { return !TargetUp(victim); }));
  // Down and named by layouts: running, and it says why.
  auto st = RebuildStatus();
  EXPECT_EQ(st.state(), "running");
  ASSERT_EQ(st.down_targets_size(), 1);
  EXPECT_EQ(st.down_targets(0), victim);
  EXPECT_NE(st.detail().find("target " + std::to_string(victim) + " is down"), std::string::npos) << st.detail();
  {
    std::lock_guard g(rec_->mu);
    EXPECT_TRUE(rec_->resyncs.empty());
  }

  ASSERT_TRUE(Call(pb::REBUILD_START, start, &e).ok());
  ASSERT_TRUE(WaitFor([&] { return TargetOf(victim).retired(); }));
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().state() == "idle"; }));
  st = RebuildStatus();
  EXPECT_EQ(st.pending_items(), 0u);
  EXPECT_EQ(st.down_targets_size(), 0);  // retired targets are not "down"
  EXPECT_EQ(st.errors(), 0u);

  std::map<uint64_t, uint32_t> expected;  // ino -> new target, for the files that named the victim
  for (const auto& before : files) {
    pb::Attr now = GetAttr(before.ino());
    ASSERT_EQ(now.layout().targets_size(), before.layout().targets_size());
    int idx = -1;
    for (int i = 0; i < before.layout().targets_size(); i++)
      if (before.layout().targets(i) == victim) idx = i;
    for (int i = 0; i < now.layout().targets_size(); i++) {
      EXPECT_NE(now.layout().targets(i), victim) << "ino " << before.ino();
      if (i != idx) {
        EXPECT_EQ(now.layout().targets(i), before.layout().targets(i)) << "ino " << before.ino();
      }
    }
    if (idx < 0) continue;
    uint32_t spare = now.layout().targets(idx);
    std::set<uint32_t> others;
    for (int i = 0; i < before.layout().targets_size(); i++)
      if (i != idx) others.insert(worker_of[before.layout().targets(i)]);
    // 8 workers, 6 in a layout: a worker the layout did not use was available.
    EXPECT_EQ(others.count(worker_of[spare]), 0u) << "ino " << before.ino() << " spare " << spare;
    expected[before.ino()] = spare;
  }
  ASSERT_FALSE(expected.empty());
  std::map<uint64_t, uint32_t> got;
  {
    std::lock_guard g(rec_->mu);
    EXPECT_EQ(rec_->repairers_made, 1);
    for (const auto& c : rec_->resyncs) {
      EXPECT_EQ(got.count(c.ino), 0u) << "ino " << c.ino << " resynced twice";
      got[c.ino] = c.target;
      pb::Attr now = GetAttr(c.ino);
      EXPECT_EQ(c.size, now.size());
      EXPECT_EQ(c.layout.k, 4u);
      EXPECT_EQ(c.layout.m, 2u);
      ASSERT_EQ(c.layout.targets.size(), size_t(now.layout().targets_size()));
      for (size_t i = 0; i < c.layout.targets.size(); i++) EXPECT_EQ(c.layout.targets[i], now.layout().targets(int(i)));
    }
  }
  EXPECT_EQ(got, expected);
  // A file without parity has nothing to rebuild from: it keeps the target
  // (a fresh spare would read as zeros).
  pb::Attr plain_attr = GetAttr(plain->ino());
  const auto& plain_now = plain_attr.layout().targets();
  EXPECT_EQ(std::vector<uint32_t>(plain_now.begin(), plain_now.end()),
            std::vector<uint32_t>(plain->layout().targets().begin(), plain->layout().targets().end()));
  EXPECT_NE(st.detail().find("without parity"), std::string::npos) << st.detail();

  // Retired: never placed again, and its return does not bring it back.
  for (int i = 0; i < 10; i++) {
    auto f = Create("after" + std::to_string(i), 4, 2);
    ASSERT_TRUE(f.ok());
    for (uint32_t t : f->layout().targets()) EXPECT_NE(t, victim);
  }
  EXPECT_EQ(Register(victim_worker), victim);
  EXPECT_TRUE(TargetOf(victim).retired());
  EXPECT_TRUE(TargetOf(victim).up());
  for (int i = 0; i < 10; i++) {
    auto f = Create("back" + std::to_string(i), 6, 1);
    ASSERT_TRUE(f.ok());
    for (uint32_t t : f->layout().targets()) EXPECT_NE(t, victim);
  }
}

TEST_F(MetaRedundancyTest, NoSpareLeavesTheFileAndSaysSo) {
  for (int w = 0; w < 6; w++) Register(w);
  auto f = Create("f", 4, 2, 5000000);
  ASSERT_TRUE(f.ok());
  const uint32_t victim = f->layout().targets(2);
  int vw = -1;
  for (auto& [w, t] : target_of_)
    if (t == victim) vw = w;
  Kill(vw);
  ASSERT_TRUE(WaitFor([&] { return !TargetUp(victim); }));
  pb::RebuildStartRequest start;  // 0: every down target
  pb::Empty e;
  ASSERT_TRUE(Call(pb::REBUILD_START, start, &e).ok());
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().detail().find("no spare target for 1 file") != std::string::npos; }))
      << RebuildStatus().detail();
  auto st = RebuildStatus();
  EXPECT_EQ(st.state(), "running");
  EXPECT_FALSE(TargetOf(victim).retired());
  EXPECT_EQ(GetAttr(f->ino()).layout().targets(2), victim);
  // The worker returns: nothing to move, nothing recorded: idle.
  Register(vw);
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().state() == "idle"; })) << RebuildStatus().detail();
}

TEST_F(MetaRedundancyTest, DegradedRecordsPersistAcrossRestartAndWaitForTheirTarget) {
  for (int w = 0; w < 6; w++) Register(w);
  auto f = Create("f", 4, 2, 9000000);
  ASSERT_TRUE(f.ok());
  const uint32_t t1 = f->layout().targets(1), t4 = f->layout().targets(4);
  int w1 = -1, w4 = -1;
  for (auto& [w, t] : target_of_) {
    if (t == t1) w1 = w;
    if (t == t4) w4 = w;
  }
  Kill(w1);
  Kill(w4);
  ASSERT_TRUE(WaitFor([&] { return !TargetUp(t1) && !TargetUp(t4); }));
  // A client wrote without them.
  pb::ReportDegradedRequest rd;
  rd.set_ino(f->ino());
  rd.add_target_ids(t1);
  rd.add_target_ids(t4);
  pb::Empty e;
  ASSERT_TRUE(Call(pb::REPORT_DEGRADED, rd, &e).ok());
  pb::ReportDegradedRequest bad;
  EXPECT_EQ(Call(pb::REPORT_DEGRADED, bad, &e).err(), EINVAL);
  auto st = RebuildStatus();
  EXPECT_EQ(st.state(), "running");
  EXPECT_EQ(st.pending_items(), 2u);

  // Restart the M-worker: the records are still there; the targets are down
  // (nobody re-registered yet), so nothing is resynced.
  std::map<int, uint32_t> saved;
  {
    std::lock_guard l(pump_mu_);
    saved.swap(alive_);
  }
  StopMeta();
  {
    auto ns = RocksNamespace::Open(dir_ + "/db", RocksOptions());
    ASSERT_TRUE(ns.ok());
    auto items = (*ns)->ListDegraded(nullptr, 10);
    ASSERT_TRUE(items.ok());
    ASSERT_EQ(items->size(), 2u);
    std::set<uint32_t> ts{(*items)[0].target, (*items)[1].target};
    EXPECT_EQ(ts, (std::set<uint32_t>{t1, t4}));
    EXPECT_EQ((*items)[0].ino, f->ino());
    EXPECT_EQ((*ns)->Counters().degraded, 2u);
  }
  StartMeta();
  st = RebuildStatus();
  EXPECT_EQ(st.state(), "running");
  EXPECT_EQ(st.pending_items(), 2u);
  // The other workers return, then t1's: only t1's record is resynced.
  for (int w = 0; w < 6; w++)
    if (w != w4) Register(w);
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().pending_items() == 1u; }));
  {
    std::lock_guard g(rec_->mu);
    ASSERT_EQ(rec_->resyncs.size(), 1u);
    EXPECT_EQ(rec_->resyncs[0].ino, f->ino());
    EXPECT_EQ(rec_->resyncs[0].target, t1);
    EXPECT_EQ(rec_->resyncs[0].index, 1u);
    EXPECT_EQ(rec_->resyncs[0].size, 9000000u);
  }
  EXPECT_EQ(RebuildStatus().state(), "running");
  Register(w4);
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().state() == "idle"; }));
  st = RebuildStatus();
  EXPECT_EQ(st.pending_items(), 0u);
  EXPECT_EQ(st.files_done(), 2u);
  EXPECT_EQ(st.bytes_done(), 2u << 20);  // one unit paced per resync by the recorder
  std::lock_guard g(rec_->mu);
  ASSERT_EQ(rec_->resyncs.size(), 2u);
  EXPECT_EQ(rec_->resyncs[1].target, t4);
  EXPECT_EQ(rec_->resyncs[1].index, 4u);
}

TEST_F(MetaRedundancyTest, FailedResyncKeepsTheRecordAndCountsTheError) {
  for (int w = 0; w < 6; w++) Register(w);
  auto f = Create("f", 3, 1, 1000);
  ASSERT_TRUE(f.ok());
  {
    std::lock_guard g(rec_->mu);
    rec_->fail_inos.insert(f->ino());
  }
  pb::ReportDegradedRequest rd;
  rd.set_ino(f->ino());
  rd.add_target_ids(f->layout().targets(3));
  pb::Empty e;
  ASSERT_TRUE(Call(pb::REPORT_DEGRADED, rd, &e).ok());
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().errors() >= 1; }));
  auto st = RebuildStatus();
  EXPECT_EQ(st.state(), "running");
  EXPECT_EQ(st.pending_items(), 1u);
  EXPECT_NE(st.last_error().find("injected failure"), std::string::npos) << st.last_error();
  {
    std::lock_guard g(rec_->mu);
    rec_->fail_inos.clear();
  }
  // cfs rebuild retries now (the failure's back-off is dropped).
  pb::RebuildStartRequest start;
  ASSERT_TRUE(Call(pb::REBUILD_START, start, &e).ok());
  ASSERT_TRUE(WaitFor([&] { return RebuildStatus().state() == "idle"; }));
  EXPECT_EQ(RebuildStatus().pending_items(), 0u);
}

TEST_F(MetaRedundancyTest, ReportDuringResyncIsNotLost) {
  // Store level: a record reported again after a resync read it survives
  // that resync's completion.
  auto ns = RocksNamespace::Open(dir_ + "/db2", RocksOptions());
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE((*ns)->AddDegraded(42, {7, 9}).ok());
  auto items = (*ns)->ListDegraded(nullptr, 10);
  ASSERT_TRUE(items.ok());
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].target, 7u);
  EXPECT_EQ((*items)[1].target, 9u);
  ASSERT_TRUE((*ns)->AddDegraded(42, {7}).ok());  // again, while "resyncing"
  EXPECT_EQ((*ns)->Counters().degraded, 2u);
  ASSERT_TRUE((*ns)->DegradedDone((*items)[0]).ok());
  ASSERT_TRUE((*ns)->DegradedDone((*items)[1]).ok());
  auto left = (*ns)->ListDegraded(nullptr, 10);
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].target, 7u);
  EXPECT_EQ((*ns)->Counters().degraded, 1u);
  // Paging from a record.
  ASSERT_TRUE((*ns)->AddDegraded(5, {8}).ok());
  auto page = (*ns)->ListDegraded(&(*left)[0], 10);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].target, 8u);
  EXPECT_EQ((*page)[0].ino, 5u);
}

TEST_F(MetaRedundancyTest, ScrubPassCoversParityFilesAndSumsTheStats) {
  for (int w = 0; w < 6; w++) Register(w);
  std::set<uint64_t> parity_files;
  for (int i = 0; i < 5; i++) {
    auto f = Create("p" + std::to_string(i), 4, 2, 1 << 20);
    ASSERT_TRUE(f.ok());
    parity_files.insert(f->ino());
  }
  ASSERT_TRUE(Create("plain", 3, 0, 1 << 20).ok());
  pb::ScrubStatusResponse st;
  ASSERT_TRUE(Call(pb::SCRUB_STATUS, pb::Empty(), &st).ok());
  EXPECT_EQ(st.state(), "idle");
  EXPECT_EQ(st.passes(), 0u);
  pb::ScrubStartRequest req;
  pb::Empty e;
  ASSERT_TRUE(Call(pb::SCRUB_START, req, &e).ok());
  ASSERT_TRUE(WaitFor([&] {
    pb::ScrubStatusResponse s;
    return Call(pb::SCRUB_STATUS, pb::Empty(), &s).ok() && s.passes() == 1 && s.state() == "idle";
  }));
  ASSERT_TRUE(Call(pb::SCRUB_STATUS, pb::Empty(), &st).ok());
  EXPECT_EQ(st.files_total(), 5u);
  EXPECT_EQ(st.files_done(), 5u);
  EXPECT_EQ(st.stripes_checked(), 10u);
  uint64_t odd = 0;
  for (uint64_t ino : parity_files) odd += ino % 2;
  EXPECT_EQ(st.checksum_errors(), odd);
  EXPECT_EQ(st.units_repaired(), odd);
  EXPECT_EQ(st.bytes_checked(), 5u << 20);
  EXPECT_EQ(st.errors(), 0u);
  EXPECT_GT(st.finished_unix(), 0);
  std::lock_guard g(rec_->mu);
  EXPECT_EQ(std::set<uint64_t>(rec_->scrubbed.begin(), rec_->scrubbed.end()), parity_files);
  EXPECT_EQ(rec_->scrubbed.size(), 5u);
}

}  // namespace
}  // namespace cfs::meta
