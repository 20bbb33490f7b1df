// The M-worker service over real TCP on 127.0.0.1: worker registration with
// persistent ids, placement (defaults, hints, directory layouts, errors),
// heartbeat expiry, statfs, and object GC against a real RPC server standing
// in for an S-worker that records DELETE_OBJECT calls.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
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

uint16_t PickPort(int salt) { return static_cast<uint16_t>(20000 + (getpid() * 7 + salt * 101) % 20000); }

class MetaServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cfs-metasvc-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    transport_ = rpc::NewTcpTransport();
    // The stand-in S-worker.
    sworker_ = transport_->NewServer(2);
    sworker_->Register(pb::DELETE_OBJECT, [this](rpc::ServerCall& c) {
      pb::ObjectRequest req;
      req.ParseFromArray(c.body().data(), int(c.body().size()));
      {
        std::lock_guard l(mu_);
        deleted_.insert({req.ino(), req.target_id()});
      }
      pb::Empty e;
      c.Reply(Status::OK(), &e);
    });
    // Any free port: nothing needs it stable.
    Status st = sworker_->Start("127.0.0.1", 0);
    ASSERT_TRUE(st.ok()) << st.ToString();
    sport_ = sworker_->port();
    ASSERT_NE(sport_, 0);
    StartMeta();
  }
  void StartMeta() {
    auto ns = RocksNamespace::Open(dir_ + "/db", RocksOptions());
    ASSERT_TRUE(ns.ok()) << ns.status().ToString();
    ns_ = std::move(ns).value();
    MetaOptions mo;
    mo.heartbeat_timeout = 1000ms;
    mo.orphan_grace = 0ms;
    svc_ = std::make_unique<MetaService>(ns_.get(), mo);
    for (int i = 50; i < 70; i++) {
      mport_ = PickPort(i);
      if (svc_->Start("127.0.0.1", mport_).ok()) break;
      svc_ = std::make_unique<MetaService>(ns_.get(), mo);
      mport_ = 0;
    }
    ASSERT_NE(mport_, 0);
    auto ch = transport_->Connect({"127.0.0.1", mport_}, 2000ms);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    meta_ = *ch;
  }
  void StopMeta() {
    meta_.reset();
    svc_->Stop();
    svc_.reset();
    ns_.reset();
  }
  void TearDown() override {
    if (svc_) StopMeta();
    sworker_->Stop();
    std::filesystem::remove_all(dir_);
  }
  Status Call(pb::Method m, const google::protobuf::Message& req, google::protobuf::Message* resp) {
    rpc::CallSpec spec;
    spec.method = m;
    spec.request = &req;
    spec.response = resp;
    return meta_->Call(spec);
  }
  pb::RegisterWorkerResponse Register(int w, int targets) {
    pb::RegisterWorkerRequest r;
    r.set_worker_uuid("worker-" + std::to_string(w));
    r.set_host("127.0.0.1");
    r.set_port(sport_);
    for (int t = 0; t < targets; t++) {
      auto* ti = r.add_targets();
      ti->set_uuid("target-" + std::to_string(w) + "-" + std::to_string(t));
      ti->set_capacity(100ull << 30);
      ti->set_free((50ull + w) << 30);
    }
    pb::RegisterWorkerResponse resp;
    Status s = Call(pb::REGISTER_WORKER, r, &resp);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return resp;
  }
  Result<pb::Attr> Create(uint64_t parent, const std::string& name, uint32_t k = 0, uint32_t m = 0) {
    pb::CreateRequest r;
    r.set_parent(parent);
    r.set_name(name);
    r.set_mode(S_IFREG | 0644);
    r.set_exclusive(true);
    r.mutable_layout_hint()->set_k(k);
    r.mutable_layout_hint()->set_m(m);
    pb::CreateResponse resp;
    Status s = Call(pb::CREATE, r, &resp);
    if (!s.ok()) return s;
    return resp.attr();
  }
  std::map<uint32_t, uint32_t> WorkerOfTarget() {
    pb::ClusterMap map;
    EXPECT_TRUE(Call(pb::GET_CLUSTER_MAP, pb::Empty(), &map).ok());
    std::map<uint32_t, uint32_t> out;
    for (auto& t : map.targets()) out[t.id()] = t.worker_id();
    return out;
  }

  std::string dir_;
  std::shared_ptr<rpc::Transport> transport_;
  std::unique_ptr<rpc::Server> sworker_;
  uint16_t sport_ = 0, mport_ = 0;
  std::unique_ptr<RocksNamespace> ns_;
  std::unique_ptr<MetaService> svc_;
  std::shared_ptr<rpc::Channel> meta_;
  std::mutex mu_;
  std::set<std::pair<uint64_t, uint32_t>> deleted_;
};

TEST_F(MetaServiceTest, RegistrationIdsArePersistent) {
  auto a = Register(0, 2);
  auto b = Register(1, 2);
  EXPECT_NE(a.worker_id(), b.worker_id());
  ASSERT_EQ(a.targets_size(), 2);
  std::set<uint32_t> ids{a.targets(0).id(), a.targets(1).id(), b.targets(0).id(), b.targets(1).id()};
  EXPECT_EQ(ids.size(), 4u);
  auto again = Register(0, 2);
  EXPECT_EQ(again.worker_id(), a.worker_id());
  EXPECT_EQ(again.targets(1).id(), a.targets(1).id());
  EXPECT_GT(again.epoch(), a.epoch());
  StopMeta();
  StartMeta();
  auto after = Register(1, 2);
  EXPECT_EQ(after.worker_id(), b.worker_id());
  EXPECT_EQ(after.targets(0).id(), b.targets(0).id());
  EXPECT_GT(after.epoch(), again.epoch());
}

TEST_F(MetaServiceTest, PlacementDefaultsHintsAndErrors) {
  // No targets yet: a clear ENOSPC.
  auto none = Create(kRootIno, "early");
  EXPECT_EQ(none.status().err(), ENOSPC);
  EXPECT_NE(none.status().message().find("only 0 up"), std::string::npos) << none.status().message();
  for (int w = 0; w < 3; w++) Register(w, 2);
  auto wot = WorkerOfTarget();
  // Default k=0: all 6 up targets, the first three on distinct workers.
  auto all = Create(kRootIno, "all");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->layout().k(), 6u);
  EXPECT_EQ(all->layout().unit(), 1u << 20);
  std::set<uint32_t> t(all->layout().targets().begin(), all->layout().targets().end());
  EXPECT_EQ(t.size(), 6u);
  std::set<uint32_t> w3;
  for (int i = 0; i < 3; i++) w3.insert(wot[all->layout().targets(i)]);
  EXPECT_EQ(w3.size(), 3u);
  // Most free space first: worker 2 has the most.
  EXPECT_EQ(wot[all->layout().targets(0)], wot.rbegin()->second);
  // A hint of k=3 spreads over three workers.
  auto three = Create(kRootIno, "three", 3);
  ASSERT_TRUE(three.ok());
  std::set<uint32_t> tw;
  for (uint32_t id : three->layout().targets()) tw.insert(wot[id]);
  EXPECT_EQ(tw.size(), 3u);
  auto par = Create(kRootIno, "parity", 2, 1);
  ASSERT_TRUE(par.ok()) << par.status().ToString();
  EXPECT_EQ(par->layout().m(), 1u);
  EXPECT_EQ(par->layout().targets_size(), 3);
  auto big = Create(kRootIno, "big", 7);
  EXPECT_EQ(big.status().err(), ENOSPC);
  EXPECT_EQ(big.status().message(), "layout 7+0 needs 7 targets, only 6 up (retired targets are never used)");
  // Directory layouts are inherited.
  pb::MkdirRequest mk;
  mk.set_parent(kRootIno);
  mk.set_name("d");
  mk.set_mode(0755);
  pb::AttrResponse d;
  ASSERT_TRUE(Call(pb::MKDIR, mk, &d).ok());
  pb::SetDirLayoutRequest sl;
  sl.set_ino(d.attr().ino());
  sl.mutable_layout()->set_k(2);
  sl.mutable_layout()->set_unit(256 * 1024);
  pb::Empty e;
  ASSERT_TRUE(Call(pb::SET_DIR_LAYOUT, sl, &e).ok());
  auto inh = Create(d.attr().ino(), "f");
  ASSERT_TRUE(inh.ok());
  EXPECT_EQ(inh->layout().k(), 2u);
  EXPECT_EQ(inh->layout().unit(), 256u * 1024);
  sl.mutable_layout()->set_m(5);  // parity units: 0..4
  EXPECT_EQ(Call(pb::SET_DIR_LAYOUT, sl, &e).err(), EINVAL);
  sl.mutable_layout()->set_m(0);
  sl.mutable_layout()->set_unit(1000);
  EXPECT_EQ(Call(pb::SET_DIR_LAYOUT, sl, &e).err(), EINVAL);
  pb::StatfsResponse sf;
  ASSERT_TRUE(Call(pb::STATFS, pb::Empty(), &sf).ok());
  EXPECT_EQ(sf.capacity(), 600ull << 30);
  EXPECT_EQ(sf.free(), (2 * 50ull + 2 * 51 + 2 * 52) << 30);
  EXPECT_EQ(sf.name_max(), 255u);
}

TEST_F(MetaServiceTest, HeartbeatTimeoutMarksDown) {
  auto a = Register(0, 1);
  auto b = Register(1, 1);
  pb::HeartbeatRequest hb;
  hb.set_worker_id(a.worker_id());
  auto* t = hb.add_targets();
  t->set_id(a.targets(0).id());
  t->set_capacity(10ull << 30);
  t->set_free(3ull << 30);
  pb::HeartbeatResponse hr;
  uint64_t epoch0 = 0;
  for (int i = 0; i < 25; i++) {  // keep worker a alive for 2.5 s; b goes silent
    ASSERT_TRUE(Call(pb::HEARTBEAT, hb, &hr).ok());
    EXPECT_FALSE(hr.reregister());
    if (!epoch0) epoch0 = hr.epoch();
    std::this_thread::sleep_for(100ms);
  }
  pb::ClusterMap map;
  ASSERT_TRUE(Call(pb::GET_CLUSTER_MAP, pb::Empty(), &map).ok());
  EXPECT_GT(map.epoch(), epoch0);
  for (auto& w : map.workers()) EXPECT_EQ(w.up(), w.id() == a.worker_id()) << w.id();
  for (auto& tt : map.targets()) {
    EXPECT_EQ(tt.up(), tt.worker_id() == a.worker_id());
    if (tt.id() == a.targets(0).id()) {
      EXPECT_EQ(tt.free(), 3ull << 30);
    }
  }
  hb.set_worker_id(b.worker_id());
  hb.clear_targets();
  ASSERT_TRUE(Call(pb::HEARTBEAT, hb, &hr).ok());
  EXPECT_TRUE(hr.reregister());
  hb.set_worker_id(999);
  ASSERT_TRUE(Call(pb::HEARTBEAT, hb, &hr).ok());
  EXPECT_TRUE(hr.reregister());
  pb::StatusResponse st;
  ASSERT_TRUE(Call(pb::GET_STATUS, pb::Empty(), &st).ok());
  EXPECT_EQ(st.map().workers_size(), 2);
  EXPECT_EQ(st.directories(), 1u);
}

TEST_F(MetaServiceTest, UnlinkDeletesObjectsOnWorkers) {
  Register(0, 2);
  Register(1, 2);
  auto f = Create(kRootIno, "f", 3);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  pb::UnlinkRequest u;
  u.set_parent(kRootIno);
  u.set_name("f");
  pb::Empty e;
  ASSERT_TRUE(Call(pb::UNLINK, u, &e).ok());
  std::set<std::pair<uint64_t, uint32_t>> want;
  for (uint32_t t : f->layout().targets()) want.insert({f->ino(), t});
  for (int i = 0; i < 100; i++) {
    {
      std::lock_guard l(mu_);
      if (deleted_ == want) break;
    }
    std::this_thread::sleep_for(50ms);
  }
  {
    std::lock_guard l(mu_);
    EXPECT_EQ(deleted_, want);
  }
  pb::StatusResponse st;
  for (int i = 0; i < 50; i++) {
    ASSERT_TRUE(Call(pb::GET_STATUS, pb::Empty(), &st).ok());
    if (st.pending_deletes() == 0) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(st.pending_deletes(), 0u);
  // Errors travel as errno values.
  EXPECT_EQ(Call(pb::UNLINK, u, &e).err(), ENOENT);
  pb::LookupRequest lr;
  lr.set_parent(kRootIno);
  lr.set_name(std::string(256, 'n'));
  pb::AttrResponse ar;
  EXPECT_EQ(Call(pb::LOOKUP, lr, &ar).err(), ENAMETOOLONG);
}

TEST_F(MetaServiceTest, DeletionWaitsForDownWorkerAndSurvivesRestart) {
  Register(0, 1);
  auto f = Create(kRootIno, "f", 1);
  ASSERT_TRUE(f.ok());
  sworker_->Stop();  // the S-worker is unreachable
  pb::UnlinkRequest u;
  u.set_parent(kRootIno);
  u.set_name("f");
  pb::Empty e;
  ASSERT_TRUE(Call(pb::UNLINK, u, &e).ok());
  std::this_thread::sleep_for(1500ms);
  pb::StatusResponse st;
  ASSERT_TRUE(Call(pb::GET_STATUS, pb::Empty(), &st).ok());
  EXPECT_EQ(st.pending_deletes(), 1u);
  StopMeta();
  StartMeta();
  // The S-worker comes back (same address) and registers again.
  sworker_ = transport_->NewServer(2);
  sworker_->Register(pb::DELETE_OBJECT, [this](rpc::ServerCall& c) {
    pb::ObjectRequest req;
    req.ParseFromArray(c.body().data(), int(c.body().size()));
    {
      std::lock_guard l(mu_);
      deleted_.insert({req.ino(), req.target_id()});
    }
    pb::Empty e2;
    c.Reply(Status::OK(), &e2);
  });
  ASSERT_TRUE(sworker_->Start("127.0.0.1", sport_).ok());
  Register(0, 1);
  for (int i = 0; i < 100; i++) {
    ASSERT_TRUE(Call(pb::GET_STATUS, pb::Empty(), &st).ok());
    if (st.pending_deletes() == 0) break;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(st.pending_deletes(), 0u);
  std::lock_guard l(mu_);
  EXPECT_TRUE(deleted_.count({f->ino(), f->layout().targets(0)}));
}

}  // namespace
}  // namespace cfs::meta
