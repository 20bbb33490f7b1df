// EcIo and the Repairer against six real S-worker services (StorageService
// over FileUnitStore) on loopback TCP, with a small map server standing in
// for the M-worker's GET_CLUSTER_MAP and REPORT_DEGRADED. Data is checked by
// content against a model; parity by Scrub (which re-encodes and compares).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "client/cluster_map.h"
#include "client/ec_io.h"
#include "client/meta_client.h"
#include "client/repair.h"
#include "rpc/frame.h"
#include "rpc/tcp_transport.h"
#include "storage_service.h"
#include "target.h"

using namespace cfs;
using namespace cfs::client;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t kUnit = 64 * 1024;
constexpr int kWorkers = 6;

class EcIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/cfs_ec_io_test_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    transport_ = rpc::NewTcpTransport();
    ports_.assign(kWorkers, 0);
    up_.assign(kWorkers, true);
    services_.resize(kWorkers);
    for (int w = 0; w < kWorkers; w++) StartWorker(w);
    meta_server_ = transport_->NewServer(2);
    meta_server_->Register(pb::GET_CLUSTER_MAP, [this](rpc::ServerCall& c) {
      pb::ClusterMap m;
      std::lock_guard<std::mutex> g(mu_);
      m.set_epoch(epoch_);
      for (int w = 0; w < kWorkers; w++) {
        auto* wi = m.add_workers();
        wi->set_id(w + 1);
        wi->set_host("127.0.0.1");
        wi->set_port(ports_[w]);
        wi->set_up(up_[w]);
        auto* ti = m.add_targets();
        ti->set_id(w + 1);
        ti->set_worker_id(w + 1);
        ti->set_up(up_[w]);
      }
      c.Reply(Status::OK(), &m);
    });
    meta_server_->Register(pb::REPORT_DEGRADED, [this](rpc::ServerCall& c) {
      pb::ReportDegradedRequest r;
      Status st = rpc::DecodeBody(c.body(), &r);
      {
        std::lock_guard<std::mutex> g(mu_);
        for (uint32_t t : r.target_ids()) degraded_.insert({r.ino(), t});
      }
      pb::Empty e;
      c.Reply(st, &e);
    });
    ASSERT_TRUE(meta_server_->Start("127.0.0.1", 0).ok());
    layout_.unit = kUnit;
    layout_.k = 4;
    layout_.m = 2;
    for (int w = 0; w < kWorkers; w++) layout_.targets.push_back(w + 1);
    clients_.push_back(NewClient());
  }

  void TearDown() override {
    clients_.clear();
    for (auto& s : services_)
      if (s) s->Stop();
    meta_server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  void StartWorker(int w) {
    std::string root = dir_ + "/w" + std::to_string(w);
    std::filesystem::create_directories(root);
    auto t = storage::Target::Open(root, "worker-" + std::to_string(w));
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    std::vector<std::unique_ptr<storage::Target>> ts;
    ts.push_back(std::move(*t));
    auto s = std::make_unique<storage::StorageService>(std::move(ts));
    ASSERT_TRUE(s->SetTargetId(0, w + 1).ok());
    ASSERT_TRUE(s->Start(*transport_, "127.0.0.1", 0, 4).ok());
    std::lock_guard<std::mutex> g(mu_);
    ports_[w] = s->port();
    up_[w] = true;
    services_[w] = std::move(s);
    epoch_++;
  }

  // Stops worker w; `tell_map` also marks it down in the map (as the M-worker
  // does after the heartbeat timeout). Without it clients find out by failing.
  void StopWorker(int w, bool tell_map) {
    services_[w]->Stop();
    services_[w].reset();
    std::lock_guard<std::mutex> g(mu_);
    if (tell_map) {
      up_[w] = false;
      epoch_++;
    }
  }

  struct TestClient {
    std::unique_ptr<MetaClient> meta;
    std::unique_ptr<ClusterMapCache> map;
    std::unique_ptr<rpc::ChannelPool> pool;
    std::unique_ptr<EcIo> io;
  };
  std::unique_ptr<TestClient> NewClient() {
    auto c = std::make_unique<TestClient>();
    c->meta = std::make_unique<MetaClient>(
        transport_, std::vector<rpc::Endpoint>{{"127.0.0.1", meta_server_->port()}}, 5000ms, 1000ms);
    c->map = std::make_unique<ClusterMapCache>(c->meta.get(), 200ms);
    c->pool = std::make_unique<rpc::ChannelPool>(transport_, 2);
    c->io = std::make_unique<EcIo>(c->pool.get(), c->map.get(), c->meta.get(), 2000ms);
    return c;
  }
  EcIo& io() { return *clients_[0]->io; }

  // Writes model bytes [off, off+len) through io (the model is updated first).
  void WriteModel(EcIo& via, std::string& model, uint64_t ino, uint64_t off, uint64_t len,
                  std::mt19937_64& rng) {
    if (model.size() < off + len) model.resize(off + len, '\0');
    for (uint64_t i = 0; i < len; i++) model[off + i] = static_cast<char>(rng());
    Status st = via.Write(ino, layout_, model.data() + off, off, len);
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void ExpectContent(EcIo& via, const std::string& model, uint64_t ino) {
    std::string got(model.size(), '\x55');
    Status st = via.Read(ino, layout_, got.data(), 0, got.size());
    ASSERT_TRUE(st.ok()) << st.ToString();
    for (size_t i = 0; i < model.size(); i++)
      ASSERT_EQ(got[i], model[i]) << "first difference at byte " << i << " of " << model.size();
  }
  void ConcurrentWriters(uint64_t ino, int writers, int writes_each);
  std::string MetaAddr() { return "127.0.0.1:" + std::to_string(meta_server_->port()); }

  std::string dir_;
  std::shared_ptr<rpc::Transport> transport_;
  std::vector<std::unique_ptr<storage::StorageService>> services_;
  std::unique_ptr<rpc::Server> meta_server_;
  std::mutex mu_;
  std::vector<uint16_t> ports_;
  std::vector<bool> up_;
  uint64_t epoch_ = 1;
  std::set<std::pair<uint64_t, uint32_t>> degraded_;
  Layout layout_;
  std::vector<std::unique_ptr<TestClient>> clients_;
};

TEST_F(EcIoTest, FullAndPartialWritesReadBackAndParityHolds) {
  const uint64_t ino = 7;
  std::string model;
  std::mt19937_64 rng(1);
  WriteModel(io(), model, ino, 0, 3 * layout_.stripe_bytes(), rng);  // full stripes
  for (int i = 0; i < 60; i++) {  // partial writes: inside a unit, across units and stripes
    uint64_t off = rng() % (4 * layout_.stripe_bytes());
    uint64_t len = 1 + rng() % (i % 3 == 0 ? 2 * kUnit : 5000);
    WriteModel(io(), model, ino, off, len, rng);
  }
  ExpectContent(io(), model, ino);
  auto rep = NewRepairer(MetaAddr());
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  RepairStats stats;
  ASSERT_TRUE((*rep)->Scrub(ino, layout_, model.size(), &stats, nullptr).ok());
  EXPECT_GT(stats.stripes_checked, 0u);
  EXPECT_EQ(stats.parity_mismatches, 0u);
  EXPECT_EQ(stats.checksum_errors, 0u);
  EXPECT_EQ(stats.units_repaired, 0u);
  // Any two workers lost: the same bytes, decoded.
  StopWorker(0, false);
  StopWorker(3, true);
  ExpectContent(io(), model, ino);
}

TEST_F(EcIoTest, DegradedWritesAreReportedAndResyncRestoresRedundancy) {
  const uint64_t ino = 9;
  std::string model;
  std::mt19937_64 rng(2);
  WriteModel(io(), model, ino, 0, 2 * layout_.stripe_bytes() + 777, rng);
  StopWorker(1, false);  // found out by failing calls
  StopWorker(4, true);
  WriteModel(io(), model, ino, 1000, 3 * kUnit, rng);               // partial, degraded
  WriteModel(io(), model, ino, 2 * layout_.stripe_bytes(), layout_.stripe_bytes(), rng);  // full
  ExpectContent(io(), model, ino);
  {
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_TRUE(degraded_.count({ino, 2})) << "target 2 missed writes but was not reported";
    EXPECT_TRUE(degraded_.count({ino, 5})) << "target 5 missed writes but was not reported";
  }
  // They come back stale: readers must not trust them...
  StartWorker(1);
  StartWorker(4);
  ExpectContent(io(), model, ino);
  // ...until resynced; then any other two may go.
  auto rep = NewRepairer(MetaAddr());
  ASSERT_TRUE(rep.ok());
  for (uint32_t t : {1u, 4u}) {
    RepairStats stats;
    Status st = (*rep)->ResyncTarget(ino, layout_, t, model.size(), &stats, nullptr);
    ASSERT_TRUE(st.ok()) << st.ToString();
    EXPECT_GT(stats.units_repaired, 0u);
  }
  StopWorker(0, true);
  StopWorker(2, true);
  ExpectContent(io(), model, ino);
}

// `writers` clients (separate EcIo, channels and version caches) write
// disjoint interleaved 4 KiB blocks of the same two stripes at once: every
// write is a read-modify-write of the same stripes, so they conflict all the
// time. Then: the bytes by content, parity by scrub (a unit left behind must
// have been reported), and the bytes again with m workers gone.
void EcIoTest::ConcurrentWriters(uint64_t ino, int writers, int writes_each) {
  while (static_cast<int>(clients_.size()) < writers) clients_.push_back(NewClient());
  const uint64_t span = 2 * layout_.stripe_bytes(), block = 4096;
  std::string model(span, '\0');
  std::mutex model_mu;
  auto writer = [&](int who) {
    std::mt19937_64 rng(100 + who);
    std::string buf(block, '\0');
    for (int i = 0; i < writes_each; i++) {
      uint64_t b = (rng() % (span / block / writers)) * writers + who;  // this writer's blocks only
      for (auto& ch : buf) ch = static_cast<char>(rng());
      Status st = clients_[who]->io->Write(ino, layout_, buf.data(), b * block, block);
      ASSERT_TRUE(st.ok()) << st.ToString();
      std::lock_guard<std::mutex> g(model_mu);
      model.replace(b * block, block, buf);
    }
  };
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; w++) threads.emplace_back(writer, w);
  for (auto& t : threads) t.join();
  ExpectContent(io(), model, ino);
  auto rep = NewRepairer(MetaAddr());
  ASSERT_TRUE(rep.ok());
  RepairStats stats;
  Status st = (*rep)->Scrub(ino, layout_, span, &stats, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.parity_mismatches, 0u);
  // Under heavy load a unit may miss a write (a rival's undo or a late write
  // outlives the grace): allowed only when it was reported, so the M-worker
  // resyncs it. Never silently.
  for (uint32_t t : stats.targets_repaired) {
    std::lock_guard<std::mutex> g(mu_);
    EXPECT_TRUE(degraded_.count({ino, t})) << "target " << t << " was behind but never reported degraded";
  }
  if (stats.units_repaired > 0)
    std::printf("note: %llu unit(s) left behind and reported (load)\n",
                static_cast<unsigned long long>(stats.units_repaired));
  for (uint32_t i = 0; i < layout_.m; i++) StopWorker(static_cast<int>(layout_.targets[1 + i] - 1), true);
  ExpectContent(io(), model, ino);
}

TEST_F(EcIoTest, ConcurrentWritersOnSharedStripesKeepParityRight) {
  ConcurrentWriters(11, 2, 150);
}

TEST_F(EcIoTest, FourWritersOnSharedStripesKeepParityRight) {
  ConcurrentWriters(12, 4, 60);
}

// k <= m: two rivals from one base can both reach k units, so a version is
// kept on a refusal only when more than m units took it.
TEST_F(EcIoTest, ConcurrentWritersWithMoreParityThanDataKeepParityRight) {
  layout_.k = 2;
  layout_.m = 2;
  layout_.targets = {1, 2, 3, 4};
  ConcurrentWriters(14, 3, 80);
}

TEST_F(EcIoTest, CorruptBlockIsDecodedOnReadAndRepaired) {
  const uint64_t ino = 13;
  std::string model;
  std::mt19937_64 rng(3);
  WriteModel(io(), model, ino, 0, 2 * layout_.stripe_bytes(), rng);
  // Flip bytes of the object file of data unit 0 of stripe 0 on disk.
  uint32_t t = TargetIndexOf(layout_, 0, 0);
  std::string root = dir_ + "/w" + std::to_string(t) + "/objects";
  std::string victim;
  for (auto& e : std::filesystem::recursive_directory_iterator(root)) {
    std::string name = e.path().filename();
    if (e.is_regular_file() && name.size() == 16) victim = e.path();
  }
  ASSERT_FALSE(victim.empty());
  {
    FILE* f = fopen(victim.c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    fseek(f, 100, SEEK_SET);
    fputs("corruption!", f);
    fclose(f);
  }
  ExpectContent(io(), model, ino);  // decoded from the others, and repaired
  auto rep = NewRepairer(MetaAddr());
  ASSERT_TRUE(rep.ok());
  RepairStats stats;
  ASSERT_TRUE((*rep)->Scrub(ino, layout_, model.size(), &stats, nullptr).ok());
  EXPECT_EQ(stats.checksum_errors, 0u) << "the read should have repaired the block already";
  // Corrupt a parity unit nobody reads: scrub finds and repairs it.
  uint32_t pt = TargetIndexOf(layout_, 1, 4);
  std::string proot = dir_ + "/w" + std::to_string(pt) + "/objects";
  for (auto& e : std::filesystem::recursive_directory_iterator(proot)) {
    std::string name = e.path().filename();
    if (!e.is_regular_file() || name.size() != 16) continue;
    FILE* f = fopen(e.path().c_str(), "r+b");
    ASSERT_NE(f, nullptr);
    fseek(f, LocalOffset(layout_, 1, pt) + 5000, SEEK_SET);
    fputs("bad parity", f);
    fclose(f);
  }
  RepairStats s2;
  ASSERT_TRUE((*rep)->Scrub(ino, layout_, model.size(), &s2, nullptr).ok());
  EXPECT_GE(s2.checksum_errors, 1u);
  EXPECT_GE(s2.units_repaired, 1u);
  RepairStats s3;
  ASSERT_TRUE((*rep)->Scrub(ino, layout_, model.size(), &s3, nullptr).ok());
  EXPECT_EQ(s3.checksum_errors, 0u);
  EXPECT_EQ(s3.units_repaired, 0u);
  // With two other workers gone the repaired parity is what decodes the data.
  StopWorker(TargetIndexOf(layout_, 1, 0), true);
  StopWorker(TargetIndexOf(layout_, 1, 1), true);
  ExpectContent(io(), model, ino);
}

}  // namespace

namespace {

TEST_F(EcIoTest, WipedTargetIsRebuiltDataAndParity) {
  const uint64_t ino = 15;
  std::string model;
  std::mt19937_64 rng(4);
  // Six stripes: the wiped target holds every unit position (data and parity) once.
  WriteModel(io(), model, ino, 0, 6 * layout_.stripe_bytes(), rng);
  WriteModel(io(), model, ino, 123456, 3 * kUnit, rng);
  StopWorker(2, true);
  std::filesystem::remove_all(dir_ + "/w2");
  StartWorker(2);  // empty, same target id: every unit of it reads as never written
  ExpectContent(io(), model, ino);
  auto rep = NewRepairer(MetaAddr());
  ASSERT_TRUE(rep.ok());
  RepairStats stats;
  Status st = (*rep)->ResyncTarget(ino, layout_, 2, model.size(), &stats, nullptr);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(stats.units_repaired, 6u);
  RepairStats sc;
  ASSERT_TRUE((*rep)->Scrub(ino, layout_, model.size(), &sc, nullptr).ok());
  EXPECT_EQ(sc.parity_mismatches, 0u);
  EXPECT_EQ(sc.units_repaired, 0u);
  StopWorker(0, true);
  StopWorker(5, true);
  ExpectContent(io(), model, ino);
}

}  // namespace
