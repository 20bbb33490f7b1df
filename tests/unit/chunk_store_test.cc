// FileChunkStore: data round trips, holes, checksum verification, torn writes,
// truncate, delete, concurrency and a full disk; then the S-worker service over TCP.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "common/layout.h"
#include "file_chunk_store.h"
#include "meta_link.h"
#include "rpc/channel_pool.h"
#include "storage_service.h"
#include "target.h"

namespace cfs::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kB = kChecksumBlock;

std::string Pattern(size_t len, uint64_t seed) {
  std::string s(len, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, len - i));
  }
  return s;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cfs-chunk-XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ChunkStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FileChunkStore::Open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }
  std::string ReadStr(uint64_t ino, uint64_t off, uint64_t len, Status* st = nullptr) {
    std::string out(len, '\xAA');
    Status s = store_->Read(ino, off, len, out.data());
    if (st) *st = s;
    else EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }
  // Overwrites one byte of the object file, behind the store's back.
  void PokeObject(uint64_t ino, uint64_t off, char c) {
    int fd = ::open(store_->ObjectPath(ino).c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, &c, 1, off), 1);
    ::close(fd);
  }
  TempDir dir_;
  std::unique_ptr<FileChunkStore> store_;
};

TEST_F(ChunkStoreTest, RoundTripOddOffsetsAcrossBlocks) {
  // A shadow copy of the object is the truth every read is compared with.
  std::string shadow(5 * kB + 1234, '\0');
  std::mt19937_64 rng(7);
  for (int i = 0; i < 60; i++) {
    uint64_t off = rng() % (4 * kB + 1000);
    uint64_t len = 1 + rng() % (shadow.size() - off);
    std::string d = Pattern(len, i);
    ASSERT_TRUE(store_->Write(42, off, d).ok());
    shadow.replace(off, len, d);
  }
  EXPECT_EQ(ReadStr(42, 0, shadow.size()), shadow);
  for (int i = 0; i < 60; i++) {
    uint64_t off = rng() % shadow.size();
    uint64_t len = 1 + rng() % (shadow.size() - off);
    ASSERT_EQ(ReadStr(42, off, len), shadow.substr(off, len)) << off << "+" << len;
  }
}

TEST_F(ChunkStoreTest, HolesAndPastEndReadZeros) {
  std::string d = Pattern(1000, 1);
  ASSERT_TRUE(store_->Write(5, 3 * kB + 17, d).ok());
  std::string all = ReadStr(5, 0, 6 * kB);
  EXPECT_EQ(all.substr(0, 3 * kB + 17), std::string(3 * kB + 17, '\0'));
  EXPECT_EQ(all.substr(3 * kB + 17, 1000), d);
  EXPECT_EQ(all.substr(3 * kB + 1017), std::string(6 * kB - 3 * kB - 1017, '\0'));
  // A missing object reads as zeros and is not created by reading.
  EXPECT_EQ(ReadStr(6, 100, 5000), std::string(5000, '\0'));
  EXPECT_FALSE(fs::exists(store_->ObjectPath(6)));
  // Object size is exactly the end of the last write (no block padding).
  EXPECT_EQ(fs::file_size(store_->ObjectPath(5)), 3 * kB + 1017);
}

TEST_F(ChunkStoreTest, CorruptionIsDetectedNotReturned) {
  std::string d = Pattern(3 * kB, 2);
  ASSERT_TRUE(store_->Write(9, 0, d).ok());
  PokeObject(9, kB + 100, static_cast<char>(d[kB + 100] ^ 0x40));
  Status st;
  ReadStr(9, kB + 50, 10, &st);  // touches the bad block only partially
  EXPECT_EQ(st.err(), EBADMSG);
  EXPECT_NE(st.message().find("checksum mismatch in object"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("block 1"), std::string::npos) << st.message();
  ReadStr(9, 0, 3 * kB, &st);  // whole-block path
  EXPECT_EQ(st.err(), EBADMSG);
  // Blocks around it still read fine.
  EXPECT_EQ(ReadStr(9, 0, kB), d.substr(0, kB));
  EXPECT_EQ(ReadStr(9, 2 * kB, kB), d.substr(2 * kB));
  // A partial write into the corrupt block refuses rather than blessing it.
  EXPECT_EQ(store_->Write(9, kB + 10, "xy").err(), EBADMSG);
  // A full overwrite of the block heals it.
  std::string fresh = Pattern(kB, 3);
  ASSERT_TRUE(store_->Write(9, kB, fresh).ok());
  EXPECT_EQ(ReadStr(9, 0, 3 * kB), d.substr(0, kB) + fresh + d.substr(2 * kB));
  EXPECT_GE(store_->checksum_errors(), 2u);
}

TEST_F(ChunkStoreTest, TornWriteLeavesOldDataReadable) {
  std::string oldd = Pattern(2 * kB, 4);
  ASSERT_TRUE(store_->Write(11, 0, oldd).ok());
  // Simulate a kill after the {new, old} record was written but before the data:
  // record of block 0 = {checksum(new), checksum(old)}.
  std::string newd = Pattern(kB, 5);
  uint64_t rec[2] = {BlockChecksum(newd.data(), kB), BlockChecksum(oldd.data(), kB)};
  int fd = ::open(store_->ChecksumPath(11).c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pwrite(fd, rec, 16, 0), 16);
  ::close(fd);
  auto reopen = FileChunkStore::Open(dir_.path());
  ASSERT_TRUE(reopen.ok());
  store_ = std::move(*reopen);
  EXPECT_EQ(ReadStr(11, 0, 2 * kB), oldd);
  EXPECT_EQ(ReadStr(11, 100, 10), oldd.substr(100, 10));
  // The other outcome of the torn write (new data landed) also reads.
  int dfd = ::open(store_->ObjectPath(11).c_str(), O_WRONLY);
  ASSERT_EQ(::pwrite(dfd, newd.data(), kB, 0), static_cast<ssize_t>(kB));
  ::close(dfd);
  EXPECT_EQ(ReadStr(11, 0, kB), newd);
  // And a partial write after a torn one keeps working: both the unclean
  // record and the full-overwrite path must pick the right "old" checksum.
  ASSERT_TRUE(store_->Write(11, 10, "hello").ok());
  std::string expect = newd;
  expect.replace(10, 5, "hello");
  EXPECT_EQ(ReadStr(11, 0, kB), expect);
}

TEST_F(ChunkStoreTest, TornFullOverwriteAfterTornWrite) {
  std::string oldd = Pattern(kB, 6);
  ASSERT_TRUE(store_->Write(12, 0, oldd).ok());
  uint64_t rec[2] = {12345, BlockChecksum(oldd.data(), kB)};  // torn: data still old
  int fd = ::open(store_->ChecksumPath(12).c_str(), O_RDWR);
  ASSERT_EQ(::pwrite(fd, rec, 16, 0), 16);
  // Now a full-block overwrite; we check the record it writes before the data
  // would hold {new, checksum(old)} by tearing it ourselves afterwards.
  std::string newd = Pattern(kB, 7);
  ASSERT_TRUE(store_->Write(12, 0, newd).ok());
  uint64_t got[2];
  ASSERT_EQ(::pread(fd, got, 16, 0), 16);
  ::close(fd);
  EXPECT_EQ(got[0], BlockChecksum(newd.data(), kB));
  EXPECT_EQ(got[1], got[0]);  // settled after a completed write
  EXPECT_EQ(ReadStr(12, 0, kB), newd);
}

TEST_F(ChunkStoreTest, TruncateThenExtendReadsZeros) {
  std::string d = Pattern(4 * kB, 8);
  ASSERT_TRUE(store_->Write(13, 0, d).ok());
  ASSERT_TRUE(store_->Truncate(13, kB + 300).ok());
  EXPECT_EQ(fs::file_size(store_->ObjectPath(13)), kB + 300);
  EXPECT_EQ(fs::file_size(store_->ChecksumPath(13)), 2 * kChecksumRecordSize);
  std::string all = ReadStr(13, 0, 4 * kB);
  EXPECT_EQ(all.substr(0, kB + 300), d.substr(0, kB + 300));
  EXPECT_EQ(all.substr(kB + 300), std::string(3 * kB - 300, '\0'));
  // Extending by a write far away keeps the cut-off range zero.
  ASSERT_TRUE(store_->Write(13, 3 * kB + 5, "tail").ok());
  all = ReadStr(13, 0, 4 * kB);
  EXPECT_EQ(all.substr(kB + 300, 2 * kB - 295), std::string(2 * kB - 295, '\0'));
  EXPECT_EQ(all.substr(3 * kB + 5, 4), "tail");
  // Extending by truncate.
  ASSERT_TRUE(store_->Truncate(13, 10 * kB).ok());
  EXPECT_EQ(ReadStr(13, 4 * kB, 6 * kB), std::string(6 * kB, '\0'));
  ASSERT_TRUE(store_->Truncate(13, 0).ok());
  EXPECT_EQ(ReadStr(13, 0, 4 * kB), std::string(4 * kB, '\0'));
  // Truncating a missing object is fine and creates nothing.
  EXPECT_TRUE(store_->Truncate(777, 100).ok());
  EXPECT_FALSE(fs::exists(store_->ObjectPath(777)));
}

TEST_F(ChunkStoreTest, StaleBytesAfterCrashInTruncateNeverSurface) {
  // A crash inside Truncate can leave data whose records were already dropped.
  std::string d = Pattern(2 * kB, 9);
  ASSERT_TRUE(store_->Write(14, 0, d).ok());
  fs::resize_file(store_->ChecksumPath(14), kChecksumRecordSize);  // records of block 1 gone
  auto reopen = FileChunkStore::Open(dir_.path());
  store_ = std::move(*reopen);
  EXPECT_EQ(ReadStr(14, kB, kB), std::string(kB, '\0'));
  ASSERT_TRUE(store_->Write(14, kB + 100, "abc").ok());
  std::string expect(kB, '\0');
  expect.replace(100, 3, "abc");
  EXPECT_EQ(ReadStr(14, kB, kB), expect);
}

TEST_F(ChunkStoreTest, DeleteRemovesBothFiles) {
  ASSERT_TRUE(store_->Write(15, 0, "data").ok());
  ASSERT_TRUE(store_->Fsync(15).ok());
  EXPECT_TRUE(fs::exists(store_->ObjectPath(15)));
  EXPECT_TRUE(fs::exists(store_->ChecksumPath(15)));
  ASSERT_TRUE(store_->Delete(15).ok());
  EXPECT_FALSE(fs::exists(store_->ObjectPath(15)));
  EXPECT_FALSE(fs::exists(store_->ChecksumPath(15)));
  EXPECT_TRUE(store_->Delete(15).ok());    // again
  EXPECT_TRUE(store_->Delete(1234).ok());  // never existed
  EXPECT_EQ(ReadStr(15, 0, 4), std::string(4, '\0'));
  // Writing again makes a fresh object.
  ASSERT_TRUE(store_->Write(15, 2, "zz").ok());
  EXPECT_EQ(ReadStr(15, 0, 4), std::string("\0\0zz", 4));
  EXPECT_TRUE(store_->Fsync(999).ok());
}

TEST_F(ChunkStoreTest, ConcurrentWritersToOneObject) {
  // 8 threads write interleaved, unaligned ranges that share blocks at their
  // edges (read-modify-write races), while readers verify finished ranges.
  constexpr int kThreads = 8, kPieces = 40;
  constexpr uint64_t kPiece = 10007;  // not block aligned
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++) {
    ts.emplace_back([&, t] {
      for (int p = t; p < kPieces; p += kThreads) {
        std::string d = Pattern(kPiece, 1000 + p);
        Status st = store_->Write(16, p * kPiece, d);
        ASSERT_TRUE(st.ok()) << st.ToString();
        std::string back(kPiece, '\0');
        st = store_->Read(16, p * kPiece, kPiece, back.data());
        ASSERT_TRUE(st.ok()) << st.ToString();
        ASSERT_EQ(back, d);
      }
    });
  }
  for (auto& t : ts) t.join();
  std::string all = ReadStr(16, 0, kPieces * kPiece);
  for (int p = 0; p < kPieces; p++)
    ASSERT_EQ(all.substr(p * kPiece, kPiece), Pattern(kPiece, 1000 + p)) << "piece " << p;
}

TEST_F(ChunkStoreTest, ManyObjectsBeyondFdCache) {
  auto s = FileChunkStore::Open(dir_.path(), FileChunkStoreOptions{.max_open_objects = 8});
  ASSERT_TRUE(s.ok());
  auto& st = **s;
  for (uint64_t ino = 100; ino < 150; ino++) ASSERT_TRUE(st.Write(ino, ino, Pattern(100, ino)).ok());
  EXPECT_LE(st.open_objects(), 8u);
  for (uint64_t ino = 100; ino < 150; ino++) {
    std::string out(100, '\0');
    ASSERT_TRUE(st.Read(ino, ino, 100, out.data()).ok());
    EXPECT_EQ(out, Pattern(100, ino));
  }
}

// An object created and evicted from the fd cache before anyone fsynced it
// still owes a sync of its directories: FSYNC_OBJECT after a reopen pays it.
TEST_F(ChunkStoreTest, EvictedNewObjectsStillSyncTheirDirectories) {
  auto s = FileChunkStore::Open(dir_.path(), FileChunkStoreOptions{.max_open_objects = 2});
  ASSERT_TRUE(s.ok());
  auto& st = **s;
  for (uint64_t ino = 200; ino < 210; ino++) ASSERT_TRUE(st.Write(ino, 0, Pattern(10, ino)).ok());
  EXPECT_LE(st.open_objects(), 2u);
  EXPECT_EQ(st.unsynced_dirs(), 10u) << "evicted objects forgot their pending directory sync";
  for (uint64_t ino = 200; ino < 210; ino++) ASSERT_TRUE(st.Fsync(ino).ok());
  EXPECT_EQ(st.unsynced_dirs(), 0u);
}

// Page-aligned memory, as the transport hands request bulk to the store.
std::unique_ptr<char, decltype(&std::free)> Aligned(const std::string& content) {
  std::unique_ptr<char, decltype(&std::free)> p(
      static_cast<char*>(std::aligned_alloc(4096, (content.size() + 4095) / 4096 * 4096)), &std::free);
  std::memcpy(p.get(), content.data(), content.size());
  return p;
}

TEST_F(ChunkStoreTest, DirectWritesStayCoherentWithBufferedIo) {
  ASSERT_TRUE(store_->direct_enabled());
  const size_t kM = 1 << 20;
  std::string shadow(3 * kM, '\0');
  auto put = [&](uint64_t off, const std::string& d, bool aligned) {
    auto mem = Aligned(d);
    Status st = aligned ? store_->Write(5, off, std::string_view(mem.get(), d.size()))
                        : store_->Write(5, off, d);
    ASSERT_TRUE(st.ok()) << st.ToString();
    shadow.replace(off, d.size(), d);
  };
  // Buffered first (dirty pages), then direct over them, then buffered partial
  // writes inside the directly written range, then direct again: every read,
  // through the store and through a plain fd, sees the last write.
  put(100, Pattern(2 * kM, 1), false);
  EXPECT_EQ(store_->direct_bytes(), 0u);
  EXPECT_EQ(ReadStr(5, 0, shadow.size()), shadow);
  put(kM, Pattern(kM, 2), true);
  EXPECT_EQ(store_->direct_bytes(), kM);
  EXPECT_EQ(ReadStr(5, 0, shadow.size()), shadow);
  put(kM + 4097, Pattern(70000, 3), false);
  EXPECT_EQ(ReadStr(5, 0, shadow.size()), shadow);
  put(0, Pattern(3 * kM, 4), true);
  EXPECT_EQ(store_->direct_bytes(), 4 * kM);
  EXPECT_EQ(ReadStr(5, 0, shadow.size()), shadow);
  std::string raw(shadow.size(), '\0');
  int fd = ::open(store_->ObjectPath(5).c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::pread(fd, raw.data(), raw.size(), 0), static_cast<ssize_t>(raw.size()));
  ::close(fd);
  EXPECT_TRUE(raw == shadow);
  // Aligned memory at an unaligned offset, or a length not a page multiple,
  // goes through the page cache.
  put(kM + 512, Pattern(kM, 5), true);
  put(0, Pattern(kM + 100, 6), true);
  EXPECT_EQ(store_->direct_bytes(), 4 * kM);
  EXPECT_EQ(ReadStr(5, 0, shadow.size()), shadow);
  ASSERT_TRUE(store_->Fsync(5).ok());
}

TEST(ChunkStoreDirect, OffMeansPageCacheOnly) {
  TempDir dir;
  auto s = FileChunkStore::Open(dir.path(), FileChunkStoreOptions{.direct_io = false});
  ASSERT_TRUE(s.ok());
  std::string d = Pattern(1 << 20, 9);
  auto mem = Aligned(d);
  ASSERT_TRUE((*s)->Write(1, 0, std::string_view(mem.get(), d.size())).ok());
  EXPECT_EQ((*s)->direct_bytes(), 0u);
  EXPECT_FALSE((*s)->direct_enabled());
  std::string out(d.size(), '\0');
  ASSERT_TRUE((*s)->Read(1, 0, d.size(), out.data()).ok());
  EXPECT_TRUE(out == d);
}

TEST(ChunkStoreOpen, ClearErrors) {
  auto s = FileChunkStore::Open("/nonexistent/cfs-target");
  EXPECT_EQ(s.status().err(), ENOENT);
  EXPECT_NE(s.status().message().find("/nonexistent/cfs-target"), std::string::npos);
  auto f = FileChunkStore::Open("/etc/hostname");
  EXPECT_EQ(f.status().err(), ENOTDIR);
}

// A full disk: a tiny tmpfs. Needs root (mount); skipped otherwise.
TEST(ChunkStoreFull, EnospcIsCleanAndAcknowledgedDataStaysReadable) {
  TempDir dir;
  if (::mount("tmpfs", dir.path().c_str(), "tmpfs", 0, "size=1m") != 0)
    GTEST_SKIP() << "cannot mount tmpfs: " << strerror(errno);
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{dir.path()};
  std::string acked;
  {
    auto s = FileChunkStore::Open(dir.path());
    ASSERT_TRUE(s.ok());
    auto& st = **s;
    // Acknowledged data that shares its last block with the failing write.
    acked = Pattern(100000, 10);
    ASSERT_TRUE(st.Write(1, 0, acked).ok());
    std::string big = Pattern(2 << 20, 11);
    Status w = st.Write(1, 100000, big);
    EXPECT_EQ(w.err(), ENOSPC) << w.ToString();
    EXPECT_NE(w.message().find("target full"), std::string::npos) << w.message();
    std::string out(acked.size(), '\0');
    Status r = st.Read(1, 0, acked.size(), out.data());
    ASSERT_TRUE(r.ok()) << r.ToString();
    EXPECT_EQ(out, acked);
    // Every block of the object still verifies (whatever the failed write left).
    std::string all(2 << 20, '\0');
    r = st.Read(1, 0, all.size(), all.data());
    EXPECT_TRUE(r.ok()) << r.ToString();
    // Space comes back after a delete of other data; writes work again.
    ASSERT_TRUE(st.Truncate(1, acked.size()).ok());
    ASSERT_TRUE(st.Write(2, 0, "after").ok());
  }
}

// ---- the service over real TCP ----

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Target::Open(dir_.path(), "worker-uuid-1");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    std::vector<std::unique_ptr<Target>> ts;
    ts.push_back(std::move(*t));
    service_ = std::make_unique<StorageService>(std::move(ts));
    ASSERT_TRUE(service_->SetTargetId(0, 7).ok());
    auto tr = rpc::MakeTransport("tcp");
    ASSERT_TRUE(tr.ok());
    transport_ = *tr;
    ASSERT_TRUE(service_->Start(*transport_, "127.0.0.1", 0, 8).ok());
    ep_ = rpc::Endpoint{"127.0.0.1", service_->port()};
    pool_ = std::make_unique<rpc::ChannelPool>(transport_, 2);
  }
  Status Write(uint32_t target, uint64_t ino, uint64_t off, const std::string& d, int64_t len = -1) {
    pb::UnitIo io;
    io.set_ino(ino);
    io.set_target_id(target);
    io.set_offset(off);
    io.set_length(len < 0 ? d.size() : static_cast<uint64_t>(len));
    pb::Empty resp;
    rpc::CallSpec spec;
    spec.method = pb::WRITE_UNIT;
    spec.request = &io;
    spec.response = &resp;
    spec.bulk_out = {rpc::ConstBuf{d.data(), d.size()}};
    return pool_->Call(ep_, spec);
  }
  Status Read(uint32_t target, uint64_t ino, uint64_t off, uint64_t len, std::string* out) {
    pb::UnitIo io;
    io.set_ino(ino);
    io.set_target_id(target);
    io.set_offset(off);
    io.set_length(len);
    out->assign(len, '\xAA');
    rpc::CallSpec spec;
    spec.method = pb::READ_UNIT;
    spec.request = &io;
    spec.bulk_in = out->data();
    spec.bulk_in_cap = len;
    auto call = pool_->Start(ep_, spec);
    Status st = call->Wait();
    if (st.ok()) {
      EXPECT_EQ(call->bulk_in_len(), len);
    }
    return st;
  }
  Status Object(pb::Method m, uint64_t ino, uint64_t size = 0, uint32_t target = 7) {
    pb::ObjectRequest req;
    req.set_ino(ino);
    req.set_target_id(target);
    req.set_size(size);
    pb::Empty resp;
    rpc::CallSpec spec;
    spec.method = m;
    spec.request = &req;
    spec.response = &resp;
    return pool_->Call(ep_, spec);
  }
  TempDir dir_;
  std::unique_ptr<StorageService> service_;
  std::shared_ptr<rpc::Transport> transport_;
  std::unique_ptr<rpc::ChannelPool> pool_;
  rpc::Endpoint ep_;
};

TEST_F(ServiceTest, WriteReadOverTcp) {
  std::string d = Pattern(3 * kB + 777, 20);
  ASSERT_TRUE(Write(7, 99, 12345, d).ok());
  std::string out;
  ASSERT_TRUE(Read(7, 99, 12345, d.size(), &out).ok());
  EXPECT_EQ(out, d);
  // Holes and past the end are zeros; a 1 MiB read of a sparse region.
  ASSERT_TRUE(Read(7, 99, 0, 1 << 20, &out).ok());
  EXPECT_EQ(out.substr(0, 12345), std::string(12345, '\0'));
  EXPECT_EQ(out.substr(12345, d.size()), d);
  EXPECT_EQ(out.substr(12345 + d.size()), std::string((1 << 20) - 12345 - d.size(), '\0'));
  // Many writes in parallel from threads, then read back by content.
  std::vector<std::thread> ts;
  for (int t = 0; t < 6; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 5; i++) {
        std::string p = Pattern(256 << 10, t * 100 + i);
        EXPECT_TRUE(Write(7, 1000 + t, uint64_t(i) * (256 << 10), p).ok());
      }
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < 6; t++)
    for (int i = 0; i < 5; i++) {
      ASSERT_TRUE(Read(7, 1000 + t, uint64_t(i) * (256 << 10), 256 << 10, &out).ok());
      EXPECT_EQ(out, Pattern(256 << 10, t * 100 + i));
    }
}

TEST_F(ServiceTest, AlignedUnitsFromTheWireGoDirect) {
  // The transport's page-aligned bulk lets a whole-block write skip the page cache.
  std::string d = Pattern(1 << 20, 21);
  ASSERT_TRUE(Write(7, 5, 1 << 20, d).ok());
  EXPECT_EQ(service_->target(0).direct_bytes(), uint64_t{1} << 20);
  std::string out;
  ASSERT_TRUE(Read(7, 5, 1 << 20, d.size(), &out).ok());
  EXPECT_TRUE(out == d);
}

TEST_F(ServiceTest, ErrorsAreClear) {
  Status st = Write(8, 1, 0, "abc");
  EXPECT_EQ(st.err(), ENOENT);
  EXPECT_NE(st.message().find("unknown target 8"), std::string::npos) << st.message();
  std::string out;
  EXPECT_EQ(Read(8, 1, 0, 10, &out).err(), ENOENT);
  st = Write(7, 1, 0, "abc", 5);  // length disagrees with the bulk
  EXPECT_EQ(st.err(), EINVAL);
  st = Read(7, 1, 0, kMaxIoBytes + 1, &out);
  EXPECT_EQ(st.err(), EINVAL);
  EXPECT_EQ(Object(pb::DELETE_OBJECT, 1, 0, 9).err(), ENOENT);
}

TEST_F(ServiceTest, CorruptionTruncateFsyncDeleteStats) {
  std::string d = Pattern(2 * kB, 21);
  ASSERT_TRUE(Write(7, 5, 0, d).ok());
  ASSERT_TRUE(Object(pb::FSYNC_OBJECT, 5).ok());
  auto* store = dynamic_cast<FileChunkStore*>(&service_->target(0).store());
  ASSERT_NE(store, nullptr);
  {
    int fd = ::open(store->ObjectPath(5).c_str(), O_WRONLY);
    char c = static_cast<char>(d[kB + 1] ^ 1);
    ASSERT_EQ(::pwrite(fd, &c, 1, kB + 1), 1);
    ::close(fd);
  }
  std::string out;
  Status st = Read(7, 5, 0, 2 * kB, &out);
  EXPECT_EQ(st.err(), EBADMSG);
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos);
  ASSERT_TRUE(Read(7, 5, 0, kB, &out).ok());
  EXPECT_EQ(out, d.substr(0, kB));
  // Truncating away the bad block heals the object.
  ASSERT_TRUE(Object(pb::TRUNCATE_OBJECT, 5, 1000).ok());
  ASSERT_TRUE(Read(7, 5, 0, 2 * kB, &out).ok());
  EXPECT_EQ(out, d.substr(0, 1000) + std::string(2 * kB - 1000, '\0'));
  ASSERT_TRUE(Object(pb::DELETE_OBJECT, 5).ok());
  EXPECT_FALSE(fs::exists(store->ObjectPath(5)));
  ASSERT_TRUE(Object(pb::DELETE_OBJECT, 5).ok());

  pb::Empty req;
  pb::TargetStatsResponse resp;
  rpc::CallSpec spec;
  spec.method = pb::TARGET_STATS;
  spec.request = &req;
  spec.response = &resp;
  ASSERT_TRUE(pool_->Call(ep_, spec).ok());
  ASSERT_EQ(resp.targets_size(), 1);
  EXPECT_EQ(resp.targets(0).id(), 7u);
  EXPECT_EQ(resp.targets(0).path(), dir_.path());
  EXPECT_GT(resp.targets(0).capacity(), 0u);
  EXPECT_LE(resp.targets(0).free(), resp.targets(0).capacity());
}

// ---- targets and the M-worker link ----

TEST(TargetTest, IdentityPersistsAndBadDirsFail) {
  TempDir dir;
  std::string uuid;
  {
    auto t = Target::Open(dir.path(), "w1");
    ASSERT_TRUE(t.ok());
    uuid = (*t)->uuid();
    EXPECT_EQ(uuid.size(), 36u);
    EXPECT_EQ((*t)->id(), 0u);
    ASSERT_TRUE((*t)->SetId(42).ok());
  }
  EXPECT_EQ(ResolveWorkerUuid({"/nonexistent", dir.path()}), "w1");
  auto t = Target::Open(dir.path(), "w1");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->uuid(), uuid);
  EXPECT_EQ((*t)->id(), 42u);

  auto missing = Target::Open(dir.path() + "/nope", "w1");
  EXPECT_EQ(missing.status().err(), ENOENT);
  EXPECT_NE(missing.status().message().find("does not exist"), std::string::npos);
  auto notdir = Target::Open(dir.path() + "/TARGET", "w1");
  EXPECT_EQ(notdir.status().err(), ENOTDIR);
  EXPECT_NE(NewUuid(), NewUuid());
}

// A minimal M-worker speaking REGISTER_WORKER and HEARTBEAT on a real server.
class FakeMeta {
 public:
  explicit FakeMeta(rpc::Transport& tr, uint16_t port = 0) : server_(tr.NewServer(2)) {
    server_->Register(pb::REGISTER_WORKER,
                      rpc::Typed<pb::RegisterWorkerRequest, pb::RegisterWorkerResponse>(
                          [this](const pb::RegisterWorkerRequest& req, pb::RegisterWorkerResponse* resp) {
                            std::lock_guard<std::mutex> g(mu);
                            last = req;
                            registers++;
                            known = true;
                            resp->set_worker_id(3);
                            for (int i = 0; i < req.targets_size(); i++) {
                              *resp->add_targets() = req.targets(i);
                              resp->mutable_targets(i)->set_id(100 + i);
                            }
                            return Status::OK();
                          }));
    server_->Register(pb::HEARTBEAT, rpc::Typed<pb::HeartbeatRequest, pb::HeartbeatResponse>(
                                         [this](const pb::HeartbeatRequest& req, pb::HeartbeatResponse* resp) {
                                           std::lock_guard<std::mutex> g(mu);
                                           heartbeats++;
                                           resp->set_reregister(!known || req.worker_id() != 3);
                                           return Status::OK();
                                         }));
    EXPECT_TRUE(server_->Start("127.0.0.1", port).ok());
  }
  uint16_t port() const { return server_->port(); }
  int Registers() {
    std::lock_guard<std::mutex> g(mu);
    return registers;
  }
  std::mutex mu;
  pb::RegisterWorkerRequest last;
  int registers = 0, heartbeats = 0;
  bool known = false;

 private:
  std::unique_ptr<rpc::Server> server_;
};

bool WaitFor(const std::function<bool()>& f, int ms = 10000) {
  for (int i = 0; i < ms / 20; i++) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

TEST(MetaLinkTest, RegistersHeartbeatsAndReregisters) {
  TempDir a, b;
  std::vector<std::unique_ptr<Target>> ts;
  ts.push_back(std::move(*Target::Open(a.path(), "wu")));
  ts.push_back(std::move(*Target::Open(b.path(), "wu")));
  StorageService service(std::move(ts));
  auto tr = *rpc::MakeTransport("tcp");
  ASSERT_TRUE(service.Start(*tr, "127.0.0.1", 0, 4).ok());

  // The M-worker is down at first: the link keeps trying in the background.
  auto probe = std::make_unique<FakeMeta>(*tr);
  uint16_t meta_port = probe->port();
  probe.reset();
  MetaLinkOptions lo;
  lo.meta = {rpc::Endpoint{"127.0.0.1", meta_port}};
  lo.worker_uuid = "wu";
  lo.host = "127.0.0.1";
  lo.port = service.port();
  lo.interval = std::chrono::milliseconds(100);
  MetaLink link(lo, &service, tr);
  link.Start();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_FALSE(link.registered());

  auto meta = std::make_unique<FakeMeta>(*tr, meta_port);
  ASSERT_TRUE(link.WaitRegistered(std::chrono::seconds(10)));
  EXPECT_EQ(link.worker_id(), 3u);
  EXPECT_EQ(service.target(0).id(), 100u);
  EXPECT_EQ(service.target(1).id(), 101u);
  {
    std::lock_guard<std::mutex> g(meta->mu);
    EXPECT_EQ(meta->last.worker_uuid(), "wu");
    EXPECT_EQ(meta->last.port(), service.port());
    ASSERT_EQ(meta->last.targets_size(), 2);
    EXPECT_EQ(meta->last.targets(0).uuid(), service.target(0).uuid());
    EXPECT_GT(meta->last.targets(0).capacity(), 0u);
  }
  EXPECT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> g(meta->mu);
    return meta->heartbeats >= 3;
  }));
  // The ids are served: an I/O to target 101 works, to 102 does not.
  rpc::ChannelPool pool(tr, 1);
  pb::UnitIo io;
  io.set_ino(1);
  io.set_target_id(101);
  io.set_length(3);
  rpc::CallSpec spec;
  spec.method = pb::WRITE_UNIT;
  spec.request = &io;
  spec.bulk_out = {rpc::ConstBuf{"abc", 3}};
  EXPECT_TRUE(pool.Call({"127.0.0.1", service.port()}, spec).ok());
  io.set_target_id(102);
  EXPECT_EQ(pool.Call({"127.0.0.1", service.port()}, spec).err(), ENOENT);

  // The M-worker forgets us: reregister.
  {
    std::lock_guard<std::mutex> g(meta->mu);
    meta->known = false;
  }
  EXPECT_TRUE(WaitFor([&] { return meta->Registers() >= 2; }));
  // The M-worker restarts: register again with the new one.
  meta.reset();
  meta = std::make_unique<FakeMeta>(*tr, meta_port);
  EXPECT_TRUE(WaitFor([&] { return meta->Registers() >= 1; }));
  link.Stop();
  // Ids are remembered in TARGET across restarts.
  EXPECT_EQ(Target::Open(a.path(), "wu").value()->id(), 100u);
  service.Stop();
}

}  // namespace
}  // namespace cfs::storage
