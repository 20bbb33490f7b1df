// Client pieces without a cluster: option parsing; FileImpl's write
// aggregation, write-behind and read-ahead over an in-memory DataPath that
// records the calls; and StripedIo over real TCP to real chunk stores
// (storageworker/FileChunkStore) behind small S-worker handlers, checked by
// content, with a corrupted block and a restarted S-worker.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <random>

#include "client/client.h"
#include "client/cluster_map.h"
#include "client/file_impl.h"
#include "client/meta_client.h"
#include "client/striped_io.h"
#include "file_chunk_store.h"
#include "rpc/frame.h"
#include "rpc/tcp_transport.h"

namespace cfs::client {
namespace {

using namespace std::chrono_literals;

void Fill(char* p, size_t n, uint64_t seed, uint64_t off) {
  for (size_t i = 0; i < n; i++) {
    uint64_t x = (off + i) * 0x9E3779B97F4A7C15ull ^ seed;
    p[i] = static_cast<char>(x >> 29);
  }
}

// ---------------------------------------------------------------- options

TEST(ClientOptionsTest, Parse) {
  auto o = ClientOptions::Parse("a:1, b:2", "transport=tcp,timeout_ms=500,readahead=4,channels=3");
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->meta_addrs, (std::vector<std::string>{"a:1", "b:2"}));
  EXPECT_EQ(o->timeout, 500ms);
  EXPECT_EQ(o->readahead_stripes, 4);
  EXPECT_EQ(o->channels_per_worker, 3);
  EXPECT_TRUE(ClientOptions::Parse("h:7000", "").ok());
  EXPECT_EQ(ClientOptions::Parse("", "").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("host", "").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("h:99999", "").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("h:1", "bogus=1").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("h:1", "readahead=x").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("h:1", "readahead=-1").status().err(), EINVAL);
  EXPECT_EQ(ClientOptions::Parse("h:1", "transport=udp").status().err(), EINVAL);
  auto st = ClientOptions::Parse("h:1", "nope=2").status();
  EXPECT_NE(st.message().find("nope"), std::string::npos);
}

TEST(ClientTest, UnreachableMetaIsAClearError) {
  auto o = ClientOptions::Parse("127.0.0.1:1", "");
  ASSERT_TRUE(o.ok());
  auto t0 = std::chrono::steady_clock::now();
  auto c = Client::Connect(*o);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.status().err(), EHOSTUNREACH) << c.status().ToString();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
}

// ---------------------------------------------------------------- FileImpl over memory

// File bytes in memory. Ops apply when first waited, like real calls that
// complete later; every call is recorded.
class MemData : public DataPath {
 public:
  struct Call {
    bool write;
    uint64_t off, len;
    const char* ptr;
  };
  std::mutex mu;
  std::string bytes;
  std::vector<Call> calls;
  std::vector<std::pair<pb::Method, std::vector<uint64_t>>> object_calls;

  class Op : public IoOp {
   public:
    Op(MemData* d, bool w, char* rbuf, const char* wbuf, uint64_t off, uint64_t len)
        : d_(d), w_(w), rbuf_(rbuf), wbuf_(wbuf), off_(off), len_(len) {}
    Status Wait() override {
      if (done_) return Status::OK();
      done_ = true;
      std::lock_guard<std::mutex> g(d_->mu);
      if (w_) {
        if (d_->bytes.size() < off_ + len_) d_->bytes.resize(off_ + len_, '\0');
        std::memcpy(d_->bytes.data() + off_, wbuf_, len_);
      } else {
        for (uint64_t i = 0; i < len_; i++)
          rbuf_[i] = off_ + i < d_->bytes.size() ? d_->bytes[off_ + i] : '\0';
      }
      return Status::OK();
    }

   private:
    MemData* d_;
    bool w_;
    char* rbuf_;
    const char* wbuf_;
    uint64_t off_, len_;
    bool done_ = false;
  };

  std::unique_ptr<IoOp> StartWrite(uint64_t, const Layout&, const char* buf, uint64_t off,
                                   uint64_t len) override {
    std::lock_guard<std::mutex> g(mu);
    calls.push_back({true, off, len, buf});
    return std::make_unique<Op>(this, true, nullptr, buf, off, len);
  }
  std::unique_ptr<IoOp> StartRead(uint64_t, const Layout&, char* buf, uint64_t off,
                                  uint64_t len) override {
    std::lock_guard<std::mutex> g(mu);
    calls.push_back({false, off, len, buf});
    return std::make_unique<Op>(this, false, buf, nullptr, off, len);
  }
  Status AllTargets(pb::Method m, uint64_t, const Layout& l,
                    const std::function<uint64_t(uint32_t)>& size_of) override {
    std::vector<uint64_t> sizes;
    for (uint32_t t = 0; t < l.n(); t++) sizes.push_back(size_of ? size_of(t) : 0);
    std::lock_guard<std::mutex> g(mu);
    object_calls.push_back({m, sizes});
    if (m == pb::TRUNCATE_OBJECT) {
      uint64_t total = 0;  // file size from the per-target sizes is not needed: test sets it
      (void)total;
    }
    return Status::OK();
  }
  std::vector<Call> Writes() {
    std::lock_guard<std::mutex> g(mu);
    std::vector<Call> w;
    for (auto& c : calls)
      if (c.write) w.push_back(c);
    return w;
  }
  std::vector<Call> Reads() {
    std::lock_guard<std::mutex> g(mu);
    std::vector<Call> r;
    for (auto& c : calls)
      if (!c.write) r.push_back(c);
    return r;
  }
  void Clear() {
    std::lock_guard<std::mutex> g(mu);
    calls.clear();
  }
};

Layout TestLayout(uint32_t k, uint32_t unit) {
  Layout l;
  l.unit = unit;
  l.k = k;
  for (uint32_t i = 0; i < k; i++) l.targets.push_back(10 + i);
  return l;
}

constexpr uint32_t kUnit = 64 << 10;

TEST(FileImplTest, SequentialWritesAggregateIntoWholeStripes) {
  MemData mem;
  Layout l = TestLayout(4, kUnit);  // 256 KiB stripes
  FileImpl f(7, l, 0, &mem, nullptr, {});
  std::string chunk(32 << 10, '\0');
  const uint64_t total = 2 << 20;
  for (uint64_t off = 0; off < total; off += chunk.size()) {
    Fill(chunk.data(), chunk.size(), 1, off);
    ASSERT_EQ(*f.Write(chunk.data(), chunk.size(), off), chunk.size());
  }
  ASSERT_TRUE(f.Flush().ok());
  auto w = mem.Writes();
  ASSERT_EQ(w.size(), total / l.stripe_bytes());
  for (size_t i = 0; i < w.size(); i++) {
    EXPECT_EQ(w[i].off, i * l.stripe_bytes());
    EXPECT_EQ(w[i].len, l.stripe_bytes());
  }
  std::string want(total, '\0');
  Fill(want.data(), total, 1, 0);
  EXPECT_TRUE(mem.bytes == want);
  EXPECT_EQ(f.size(), total);
}

TEST(FileImplTest, UnalignedStartFillsToTheStripeBoundaryFirst) {
  MemData mem;
  Layout l = TestLayout(2, kUnit);  // 128 KiB stripes
  FileImpl f(7, l, 0, &mem, nullptr, {});
  std::string buf(100 << 10, 'a');
  ASSERT_TRUE(f.Write(buf.data(), buf.size(), 1000).ok());
  ASSERT_TRUE(f.Write(buf.data(), buf.size(), 1000 + buf.size()).ok());
  ASSERT_TRUE(f.Flush().ok());
  auto w = mem.Writes();
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].off, 1000u);
  EXPECT_EQ(w[0].off + w[0].len, l.stripe_bytes());  // ends at the boundary
  EXPECT_EQ(w[1].off, l.stripe_bytes());
  EXPECT_EQ(w[1].off + w[1].len, 1000 + 2 * buf.size());
}

TEST(FileImplTest, NonContiguousWriteFlushesAndOverlapsStayOrdered) {
  MemData mem;
  Layout l = TestLayout(2, kUnit);
  FileImpl f(7, l, 0, &mem, nullptr, {});
  ASSERT_TRUE(f.Write("aaaa", 4, 0).ok());
  ASSERT_TRUE(f.Write("bbbb", 4, 100).ok());  // gap: "aaaa" goes out
  EXPECT_EQ(mem.Writes().size(), 1u);
  ASSERT_TRUE(f.Write("cc", 2, 1).ok());  // overwrite inside an in-flight range
  ASSERT_TRUE(f.Flush().ok());
  EXPECT_EQ(mem.bytes.substr(0, 4), "acca");
  EXPECT_EQ(mem.bytes.substr(100, 4), "bbbb");
  EXPECT_EQ(f.size(), 104u);
}

TEST(FileImplTest, LargeWriteGoesOutWithoutCopy) {
  MemData mem;
  Layout l = TestLayout(4, kUnit);
  FileImpl f(7, l, 0, &mem, nullptr, {});
  std::string big(3 * l.stripe_bytes() + 5000, '\0');
  Fill(big.data(), big.size(), 3, 0);
  ASSERT_TRUE(f.Write(big.data(), big.size(), 0).ok());
  auto w = mem.Writes();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].ptr, big.data());  // straight from the caller's buffer
  EXPECT_EQ(w[0].len, 3 * l.stripe_bytes());
  ASSERT_TRUE(f.Flush().ok());  // the 5000-byte tail was buffered
  EXPECT_TRUE(mem.bytes == big);
}

TEST(FileImplTest, ReadSeesBufferedWritesAndClipsAndHolesAreZero) {
  MemData mem;
  Layout l = TestLayout(2, kUnit);
  FileImpl f(7, l, 0, &mem, nullptr, {});
  ASSERT_TRUE(f.Write("hello", 5, 200000).ok());
  char buf[16];
  std::memset(buf, 'x', sizeof buf);
  auto r = f.Read(buf, sizeof buf, 199998);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 7u);  // clipped at the size, 200005
  EXPECT_EQ(std::string(buf, 7), std::string("\0\0hello", 7));
  EXPECT_EQ(*f.Read(buf, 4, 200005), 0u);  // at EOF
  EXPECT_EQ(*f.Read(buf, 4, 10), 4u);
  EXPECT_EQ(std::string(buf, 4), std::string(4, '\0'));
}

TEST(FileImplTest, SequentialReadsUseWholeStripeReadAhead) {
  MemData mem;
  Layout l = TestLayout(4, kUnit);  // 256 KiB stripes
  const uint64_t size = 20 * l.stripe_bytes() + 777;
  mem.bytes.resize(size);
  Fill(mem.bytes.data(), size, 9, 0);
  FileImpl f(7, l, size, &mem, nullptr, {/*readahead*/ 2, 2});
  std::string got(size, '\0');
  for (uint64_t off = 0; off < size; off += 48 << 10) {
    auto r = f.Read(got.data() + off, std::min<uint64_t>(48 << 10, size - off), off);
    ASSERT_TRUE(r.ok());
  }
  EXPECT_TRUE(got == mem.bytes);
  auto reads = mem.Reads();
  EXPECT_EQ(reads.size(), 21u);  // one fetch per stripe, no small reads
  for (auto& c : reads) EXPECT_EQ(c.off % l.stripe_bytes(), 0u);
  EXPECT_EQ(f.readahead_fetches(), 21u);
}

TEST(FileImplTest, RandomReadsGoDirectAndWritesInvalidateReadAhead) {
  MemData mem;
  Layout l = TestLayout(4, kUnit);
  const uint64_t size = 10 * l.stripe_bytes();
  mem.bytes.assign(size, 'o');
  FileImpl f(7, l, size, &mem, nullptr, {2, 2});
  char buf[100];
  ASSERT_TRUE(f.Read(buf, 100, 0).ok());  // sequential from 0: stripes 0..2 fetched
  ASSERT_TRUE(f.Read(buf, 100, 100).ok());
  ASSERT_TRUE(f.Write("NEW", 3, 200).ok());  // into a cached stripe
  ASSERT_EQ(*f.Read(buf, 100, 200), 100u);
  EXPECT_EQ(std::string(buf, 4), "NEWo");
  mem.Clear();
  ASSERT_EQ(*f.Read(buf, 100, 7 * l.stripe_bytes() + 5), 100u);  // far away: direct
  auto reads = mem.Reads();
  ASSERT_EQ(reads.size(), 1u);
  EXPECT_EQ(reads[0].len, 100u);
  EXPECT_EQ(reads[0].ptr, buf);
}

TEST(FileImplTest, TruncateSendsPerTargetSizes) {
  MemData mem;
  Layout l = TestLayout(3, kUnit);
  FileImpl f(7, l, 0, &mem, nullptr, {});
  std::string data(5 * kUnit, 'z');
  ASSERT_TRUE(f.Write(data.data(), data.size(), 0).ok());
  const uint64_t cut = 2 * kUnit + 10;
  ASSERT_TRUE(f.Truncate(cut).ok());
  EXPECT_EQ(f.size(), cut);
  ASSERT_EQ(mem.Writes().size(), 2u);  // 3 units direct + 2 buffered, flushed first
  ASSERT_EQ(mem.object_calls.size(), 1u);
  EXPECT_EQ(mem.object_calls[0].first, pb::TRUNCATE_OBJECT);
  EXPECT_EQ(mem.object_calls[0].second, (std::vector<uint64_t>{kUnit, kUnit, 10}));
  ASSERT_TRUE(f.Fsync().ok());
  EXPECT_EQ(mem.object_calls.back().first, pb::FSYNC_OBJECT);
}

// ---------------------------------------------------------------- StripedIo over TCP

// An S-worker stand-in: a real TCP server over real FileChunkStores (one per
// target) serving the S-worker data methods.
struct TestWorker {
  std::unique_ptr<rpc::Server> server;
  std::map<uint32_t, std::unique_ptr<storage::FileChunkStore>> stores;

  void Start(std::shared_ptr<rpc::Transport> t, const std::string& dir, std::vector<uint32_t> targets) {
    for (uint32_t id : targets) {
      std::string root = dir + "/t" + std::to_string(id);
      std::filesystem::create_directories(root);
      auto s = storage::FileChunkStore::Open(root);
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      stores[id] = std::move(*s);
    }
    server = t->NewServer(4);
    server->Register(pb::WRITE_UNIT, [this](rpc::ServerCall& c) {
      pb::UnitIo r;
      Status st = rpc::DecodeBody(c.body(), &r);
      auto* s = Store(r.target_id(), &st);
      if (st.ok()) st = s->Write(r.ino(), r.offset(), c.bulk());
      pb::Empty e;
      c.Reply(st, &e);
    });
    server->Register(pb::READ_UNIT, [this](rpc::ServerCall& c) {
      pb::UnitIo r;
      Status st = rpc::DecodeBody(c.body(), &r);
      auto* s = Store(r.target_id(), &st);
      std::string buf;
      if (st.ok()) {
        buf.resize(r.length());
        st = s->Read(r.ino(), r.offset(), r.length(), buf.data());
      }
      pb::Empty e;
      c.Reply(st, &e, {{buf.data(), buf.size()}});
    });
    auto object = [this](pb::Method m) {
      return [this, m](rpc::ServerCall& c) {
        pb::ObjectRequest r;
        Status st = rpc::DecodeBody(c.body(), &r);
        auto* s = Store(r.target_id(), &st);
        if (st.ok()) st = m == pb::FSYNC_OBJECT ? s->Fsync(r.ino()) : s->Truncate(r.ino(), r.size());
        pb::Empty e;
        c.Reply(st, &e);
      };
    };
    server->Register(pb::FSYNC_OBJECT, object(pb::FSYNC_OBJECT));
    server->Register(pb::TRUNCATE_OBJECT, object(pb::TRUNCATE_OBJECT));
    ASSERT_TRUE(server->Start("127.0.0.1", 0).ok());
  }
  storage::FileChunkStore* Store(uint32_t id, Status* st) {
    auto it = stores.find(id);
    if (it == stores.end()) {
      if (st->ok()) *st = Status::NotFound("no target " + std::to_string(id));
      return nullptr;
    }
    return it->second.get();
  }
};

class StripedIoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/cfs_client_test_" + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    transport_ = rpc::NewTcpTransport();
    workers_.resize(3);
    for (int w = 0; w < 3; w++) {
      workers_[w].Start(transport_, dir_ + "/w" + std::to_string(w), {uint32_t(2 * w), uint32_t(2 * w + 1)});
    }
    meta_server_ = transport_->NewServer(2);
    meta_server_->Register(pb::GET_CLUSTER_MAP, [this](rpc::ServerCall& c) {
      pb::ClusterMap m;
      {
        std::lock_guard<std::mutex> g(mu_);
        m.set_epoch(epoch_);
        for (int w = 0; w < 3; w++) {
          auto* wi = m.add_workers();
          wi->set_id(w + 1);
          wi->set_host("127.0.0.1");
          wi->set_port(workers_[w].server->port());
          wi->set_up(true);
          for (int t = 0; t < 2; t++) {
            auto* ti = m.add_targets();
            ti->set_id(2 * w + t);
            ti->set_worker_id(w + 1);
            ti->set_up(true);
          }
        }
      }
      map_fetches_++;
      c.Reply(Status::OK(), &m);
    });
    ASSERT_TRUE(meta_server_->Start("127.0.0.1", 0).ok());
    meta_ = std::make_unique<MetaClient>(transport_,
                                         std::vector<rpc::Endpoint>{{"127.0.0.1", meta_server_->port()}},
                                         5000ms, 1000ms);
    map_ = std::make_unique<ClusterMapCache>(meta_.get(), 30s);
    pool_ = std::make_unique<rpc::ChannelPool>(transport_, 2);
    io_ = std::make_unique<StripedIo>(pool_.get(), map_.get(), 5000ms);
    layout_.unit = kUnit;
    layout_.k = 6;
    layout_.targets = {0, 1, 2, 3, 4, 5};
  }
  void TearDown() override {
    io_.reset();
    pool_.reset();
    for (auto& w : workers_) w.server->Stop();
    meta_server_->Stop();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  std::shared_ptr<rpc::Transport> transport_;
  std::vector<TestWorker> workers_;
  std::unique_ptr<rpc::Server> meta_server_;
  std::mutex mu_;
  uint64_t epoch_ = 1;
  std::atomic<int> map_fetches_{0};
  std::unique_ptr<MetaClient> meta_;
  std::unique_ptr<ClusterMapCache> map_;
  std::unique_ptr<rpc::ChannelPool> pool_;
  std::unique_ptr<StripedIo> io_;
  Layout layout_;
};

TEST_F(StripedIoTest, WriteAndReadBackByContentAndPlacement) {
  const uint64_t ino = 42, size = 5 * layout_.stripe_bytes() + 12345;
  std::string data(size, '\0');
  Fill(data.data(), size, 77, 0);
  FileImpl f(ino, layout_, 0, io_.get(), nullptr, {2, 2});
  // Mixed write sizes, sequential: aggregation, direct stripes and tails.
  std::mt19937_64 rng(5);
  for (uint64_t off = 0; off < size;) {
    uint64_t n = std::min<uint64_t>(size - off, 1 + rng() % (800 << 10));
    ASSERT_EQ(*f.Write(data.data() + off, n, off), n);
    off += n;
  }
  ASSERT_TRUE(f.Fsync().ok());
  // Sequential read back.
  std::string got(size, '\0');
  for (uint64_t off = 0; off < size; off += 100000) {
    uint64_t n = std::min<uint64_t>(100000, size - off);
    ASSERT_EQ(*f.Read(got.data() + off, n, off), n);
  }
  EXPECT_TRUE(got == data);
  // Random reads, straight into the buffer.
  for (int i = 0; i < 50; i++) {
    uint64_t off = rng() % size, n = 1 + rng() % (300 << 10);
    std::string b(n, '\0');
    auto r = f.Read(b.data(), n, off);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(*r, std::min(n, size - off));
    ASSERT_EQ(b.substr(0, *r), data.substr(off, *r));
  }
  // Placement: unit j of stripe s is on target (s + j) % n at LocalOffset.
  for (uint64_t s = 0; s < 5; s++) {
    for (uint32_t j = 0; j < layout_.k; j++) {
      uint32_t t = TargetIndexOf(layout_, s, j);
      std::string unit(kUnit, '\0');
      Status st;
      auto* store = workers_[layout_.targets[t] / 2].Store(layout_.targets[t], &st);
      ASSERT_TRUE(store->Read(ino, LocalOffset(layout_, s, t), kUnit, unit.data()).ok());
      ASSERT_EQ(unit, data.substr(s * layout_.stripe_bytes() + j * kUnit, kUnit)) << s << "/" << j;
    }
  }
}

TEST_F(StripedIoTest, TruncateShrinksObjectsAndHolesReadZero) {
  const uint64_t ino = 43;
  FileImpl f(ino, layout_, 0, io_.get(), nullptr, {2, 2});
  std::string data(3 * layout_.stripe_bytes(), 'q');
  ASSERT_TRUE(f.Write(data.data(), data.size(), 0).ok());
  ASSERT_TRUE(f.Truncate(kUnit + 5).ok());
  ASSERT_TRUE(f.Truncate(2 * layout_.stripe_bytes()).ok());  // extend: zeros
  std::string got(2 * layout_.stripe_bytes(), 'x');
  ASSERT_EQ(*f.Read(got.data(), got.size(), 0), got.size());
  EXPECT_EQ(got.substr(0, kUnit + 5), std::string(kUnit + 5, 'q'));
  EXPECT_EQ(got.substr(kUnit + 5), std::string(got.size() - kUnit - 5, '\0'));
}

TEST_F(StripedIoTest, CorruptedBlockIsEioNotWrongData) {
  const uint64_t ino = 44;
  std::string data(layout_.stripe_bytes(), 'c');
  ASSERT_TRUE(io_->StartWrite(ino, layout_, data.data(), 0, data.size())->Wait().ok());
  // Flip one byte of target 0's object on disk.
  std::string path = workers_[0].stores[0]->ObjectPath(ino);
  int fd = open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(pwrite(fd, "X", 1, 100), 1);
  close(fd);
  std::string got(data.size(), '\0');
  Status st = io_->StartRead(ino, layout_, got.data(), 0, got.size())->Wait();
  EXPECT_EQ(st.err(), EIO) << st.ToString();
  // Units on the other targets still read fine.
  EXPECT_TRUE(io_->StartRead(ino, layout_, got.data(), kUnit, kUnit)->Wait().ok());
  EXPECT_EQ(got.substr(0, kUnit), std::string(kUnit, 'c'));
}

TEST_F(StripedIoTest, RestartedWorkerIsFoundThroughAFreshMap) {
  const uint64_t ino = 45;
  std::string data(layout_.stripe_bytes(), '\0');
  Fill(data.data(), data.size(), 3, 0);
  ASSERT_TRUE(io_->StartWrite(ino, layout_, data.data(), 0, data.size())->Wait().ok());
  int fetches = map_fetches_;
  // Worker 1 restarts on another port with the same stores.
  workers_[1].server->Stop();
  auto stores = std::move(workers_[1].stores);
  workers_[1] = TestWorker();
  workers_[1].Start(transport_, dir_ + "/w1", {2, 3});
  {
    std::lock_guard<std::mutex> g(mu_);
    epoch_++;
  }
  std::string got(data.size(), '\0');
  Status st = io_->StartRead(ino, layout_, got.data(), 0, got.size())->Wait();
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(got == data);
  EXPECT_GT(map_fetches_.load(), fetches);
}

TEST_F(StripedIoTest, MalformedParityLayoutsAreRefused) {
  // Parity layouts go the erasure-coded path (tests/unit/ec_io_test.cc); one
  // the code cannot have (m > 4, or fewer targets than k+m) is an I/O error
  // naming the layout, before any call.
  char b[10];
  Layout l = layout_;
  l.k = 4;
  l.m = 5;
  Status st = io_->StartRead(1, l, b, 0, 10)->Wait();
  EXPECT_EQ(st.err(), EIO);
  EXPECT_NE(st.message().find("bad file layout"), std::string::npos) << st.ToString();
  l.m = 3;  // 4+3 on 6 targets
  st = io_->StartWrite(1, l, b, 0, 10)->Wait();
  EXPECT_EQ(st.err(), EIO);
  EXPECT_NE(st.message().find("bad file layout"), std::string::npos) << st.ToString();
}

}  // namespace
}  // namespace cfs::client
