// FileUnitStore (versioned copy-on-write units of erasure-coded files) on real
// files, and the EC_* RPCs of StorageService over real TCP.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
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
#include "file_unit_store.h"
#include "rpc/channel_pool.h"
#include "storage_service.h"
#include "target.h"

namespace cfs::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kB = kChecksumBlock;
constexpr uint32_t kUnit = 128 << 10;  // two checksum blocks

std::string Pattern(size_t len, uint64_t seed) {
  std::string s(len, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, len - i));
  }
  return s;
}

// The content a test writes for version v of a unit.
std::string Content(UnitVer v, uint64_t index = 0, uint32_t unit = kUnit) {
  return Pattern(unit, v.seq * 1000003 + v.tag * 7919 + index * 104729 + 1);
}

// Compares big byte strings without printing them.
::testing::AssertionResult Same(const std::string& a, const std::string& b) {
  if (a == b) return ::testing::AssertionSuccess();
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) i++;
  return ::testing::AssertionFailure() << "sizes " << a.size() << " and " << b.size()
                                       << ", first difference at byte " << i;
}
#define EXPECT_SAME(a, b) EXPECT_TRUE(Same(a, b))

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cfs-ecunit-XXXXXX";
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

class EcUnitStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = FileChunkStore::Open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    chunks_ = std::move(*s);
    units_ = std::make_unique<FileUnitStore>(chunks_.get());
  }
  Result<EcWriteResult> Put(uint64_t ino, uint64_t idx, UnitVer base, UnitVer ver, EcMode mode,
                            const std::string& data, uint32_t off = 0, uint32_t unit = kUnit) {
    EcWrite w;
    w.ino = ino;
    w.index = idx;
    w.unit = unit;
    w.base = base;
    w.version = ver;
    w.mode = mode;
    w.offset = off;
    w.data = data;
    return units_->Write(w);
  }
  // A FULL write that must be accepted.
  void Full(uint64_t ino, uint64_t idx, UnitVer base, UnitVer ver, const std::string& data) {
    auto r = Put(ino, idx, base, ver, EcMode::kFull, data);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_TRUE(r->accepted);
    ASSERT_EQ(r->cur, ver);
  }
  std::string Get(uint64_t ino, uint64_t idx, UnitVer want, Status* st = nullptr,
                  UnitVer* got = nullptr, uint32_t off = 0, uint32_t len = kUnit) {
    std::string out(len, '\xAA');
    auto r = units_->Read(ino, idx, kUnit, want, off, len, out.data());
    if (st) *st = r.ok() ? Status::OK() : r.status();
    else EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (r.ok() && got) *got = *r;
    return out;
  }
  UnitState State(uint64_t ino, uint64_t idx) {
    std::vector<UnitState> v;
    EXPECT_TRUE(units_->Versions(ino, idx, 1, &v).ok());
    return v.empty() ? UnitState{} : v[0];
  }
  void Poke(const std::string& path, uint64_t off) {
    int fd = ::open(path.c_str(), O_RDWR);
    ASSERT_GE(fd, 0) << path;
    char c;
    ASSERT_EQ(::pread(fd, &c, 1, off), 1);
    c ^= 0x5a;
    ASSERT_EQ(::pwrite(fd, &c, 1, off), 1);
    ::close(fd);
  }
  TempDir dir_;
  std::unique_ptr<FileChunkStore> chunks_;
  std::unique_ptr<FileUnitStore> units_;
};

const UnitVer kV0{0, 0}, kV1{1, 11}, kV2{2, 22}, kV3{3, 33}, kV4{4, 44};

TEST_F(EcUnitStoreTest, WriteReadVersionsAndNeverWritten) {
  UnitVer got{9, 9};
  EXPECT_SAME(Get(5, 3, kV0, nullptr, &got), std::string(kUnit, '\0'));
  EXPECT_EQ(got, kV0);
  Full(5, 3, kV0, kV1, Content(kV1));
  EXPECT_SAME(Get(5, 3, kV0, nullptr, &got), Content(kV1));
  EXPECT_EQ(got, kV1);
  EXPECT_SAME(Get(5, 3, kV1), Content(kV1));
  // A slice, at an odd offset across the block boundary.
  EXPECT_SAME(Get(5, 3, kV1, nullptr, nullptr, kB - 5, 11), Content(kV1).substr(kB - 5, 11));
  // Neighbours are untouched, and the unit sits densely in slot 0.
  EXPECT_SAME(Get(5, 2, kV0), std::string(kUnit, '\0'));
  EXPECT_EQ(fs::file_size(chunks_->ObjectPath(5)), 4ull * kUnit);
  std::vector<UnitState> v;
  ASSERT_TRUE(units_->Versions(5, 0, 6, &v).ok());
  ASSERT_EQ(v.size(), 6u);
  EXPECT_EQ(v[3].cur, kV1);
  EXPECT_EQ(v[3].prev, kV0);
  EXPECT_FALSE(v[3].damaged);
  for (int i : {0, 1, 2, 4, 5}) EXPECT_EQ(v[i].cur, kV0) << i;
  // A missing object: everything {0,0}.
  ASSERT_TRUE(units_->Versions(6, 0, 4096, &v).ok());
  EXPECT_EQ(v.size(), 4096u);
  EXPECT_EQ(v[100].cur, kV0);
  // Survives a reopen of the store.
  units_.reset();
  chunks_.reset();
  SetUp();
  EXPECT_SAME(Get(5, 3, kV0, nullptr, &got), Content(kV1));
  EXPECT_EQ(got, kV1);
}

TEST_F(EcUnitStoreTest, ConflictRefusedWithCurrentVersion) {
  Full(1, 0, kV0, kV1, Content(kV1));
  // Another writer raced from {0,0}: refused, told the current version.
  auto r = Put(1, 0, kV0, UnitVer{1, 99}, EcMode::kFull, Content(UnitVer{1, 99}));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->accepted);
  EXPECT_EQ(r->cur, kV1);
  r = Put(1, 0, UnitVer{1, 12}, kV2, EcMode::kRange, "xyz", 10);  // same seq, other tag
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->accepted);
  EXPECT_EQ(r->cur, kV1);
  r = Put(1, 0, kV2, kV3, EcMode::kBump, "");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->accepted);
  EXPECT_SAME(Get(1, 0, kV0), Content(kV1));
  EXPECT_EQ(State(1, 0).cur, kV1);
  EXPECT_EQ(State(1, 0).prev, kV0);
}

TEST_F(EcUnitStoreTest, CopyOnWriteKeepsPrevAndOlderIsStale) {
  Full(1, 7, kV0, kV1, Content(kV1, 7));
  Full(1, 7, kV1, kV2, Content(kV2, 7));
  EXPECT_SAME(Get(1, 7, kV1), Content(kV1, 7));
  EXPECT_SAME(Get(1, 7, kV2), Content(kV2, 7));
  EXPECT_SAME(Get(1, 7, kV0), Content(kV2, 7));
  Full(1, 7, kV2, kV3, Content(kV3, 7));
  EXPECT_SAME(Get(1, 7, kV2), Content(kV2, 7));
  EXPECT_SAME(Get(1, 7, kV3), Content(kV3, 7));
  Status st;
  Get(1, 7, kV1, &st);
  EXPECT_EQ(st.err(), ESTALE);
  EXPECT_NE(st.message().find("not {1,11}"), std::string::npos) << st.message();
  Get(1, 7, UnitVer{3, 34}, &st);
  EXPECT_EQ(st.err(), ESTALE);
  // Both slots are in use, each with its checksum sidecar.
  EXPECT_TRUE(fs::exists(chunks_->ObjectPath(1, 1)));
  EXPECT_TRUE(fs::exists(chunks_->ChecksumPath(1, 1)));
  EXPECT_EQ(fs::file_size(units_->RecordPath(1)), 8 * kUnitRecordSize);
}

TEST_F(EcUnitStoreTest, Rollback) {
  Full(2, 0, kV0, kV1, Content(kV1));
  Full(2, 0, kV1, kV2, Content(kV2));
  // Not the current version: no-op.
  ASSERT_TRUE(units_->Rollback(2, 0, kUnit, kV1).ok());
  EXPECT_EQ(State(2, 0).cur, kV2);
  ASSERT_TRUE(units_->Rollback(2, 0, kUnit, kV2).ok());
  UnitVer got;
  EXPECT_SAME(Get(2, 0, kV0, nullptr, &got), Content(kV1));
  EXPECT_EQ(got, kV1);
  EXPECT_EQ(State(2, 0).prev, kV0);
  Status st;
  Get(2, 0, kV2, &st);
  EXPECT_EQ(st.err(), ESTALE);
  // No prev kept any more: rolling back again is a no-op.
  ASSERT_TRUE(units_->Rollback(2, 0, kUnit, kV1).ok());
  EXPECT_EQ(State(2, 0).cur, kV1);
  // Writing on from the restored base works, the new version goes to the free slot.
  UnitVer v2b{2, 23};
  Full(2, 0, kV1, v2b, Content(v2b));
  EXPECT_SAME(Get(2, 0, kV1), Content(kV1));
  EXPECT_SAME(Get(2, 0, v2b), Content(v2b));
  // Rolling back the first write of a unit makes it never-written again (zeros),
  // even though its slot still holds the bytes.
  Full(3, 0, kV0, kV1, Content(kV1));
  ASSERT_TRUE(units_->Rollback(3, 0, kUnit, kV1).ok());
  EXPECT_SAME(Get(3, 0, kV0, nullptr, &got), std::string(kUnit, '\0'));
  EXPECT_EQ(got, kV0);
  // ...and a BUMP from there still gives zeros, not the stale slot bytes.
  auto r = Put(3, 0, kV0, kV1, EcMode::kBump, "");
  ASSERT_TRUE(r.ok() && r->accepted);
  EXPECT_SAME(Get(3, 0, kV1), std::string(kUnit, '\0'));
  // RANGE on that zero content, then repair of it, stay consistent.
  std::string p = Pattern(100, 5);
  r = Put(3, 0, kV1, kV2, EcMode::kRange, p, 300);
  ASSERT_TRUE(r.ok() && r->accepted);
  std::string want(kUnit, '\0');
  want.replace(300, 100, p);
  EXPECT_SAME(Get(3, 0, kV2), want);
  EXPECT_SAME(Get(3, 0, kV1), std::string(kUnit, '\0'));
}

TEST_F(EcUnitStoreTest, BumpSharesContent) {
  Full(4, 1, kV0, kV1, Content(kV1, 1));
  auto r = Put(4, 1, kV1, kV2, EcMode::kBump, "");
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->accepted);
  EXPECT_EQ(r->cur, kV2);
  EXPECT_SAME(Get(4, 1, kV2), Content(kV1, 1));
  EXPECT_SAME(Get(4, 1, kV1), Content(kV1, 1));
  EXPECT_EQ(State(4, 1).prev, kV1);
  // The next write keeps the shared content readable as prev.
  Full(4, 1, kV2, kV3, Content(kV3, 1));
  EXPECT_SAME(Get(4, 1, kV2), Content(kV1, 1));
  EXPECT_SAME(Get(4, 1, kV3), Content(kV3, 1));
  // BUMP of a never-written unit: zeros at the new version.
  r = Put(4, 9, kV0, kV1, EcMode::kBump, "");
  ASSERT_TRUE(r.ok() && r->accepted);
  EXPECT_SAME(Get(4, 9, kV1), std::string(kUnit, '\0'));
}

TEST_F(EcUnitStoreTest, RangeAndXorByteExact) {
  const std::string a = Content(kV1);
  Full(6, 2, kV0, kV1, a);
  // RANGE across the block boundary.
  const std::string p = Pattern(70000, 77);
  auto r = Put(6, 2, kV1, kV2, EcMode::kRange, p, 1000);
  ASSERT_TRUE(r.ok() && r->accepted) << r.status().ToString();
  std::string b = a;
  b.replace(1000, p.size(), p);
  EXPECT_SAME(Get(6, 2, kV2), b);
  EXPECT_SAME(Get(6, 2, kV1), a);
  // XOR a delta near the end of the unit.
  const std::string q = Pattern(4099, 78);
  const uint32_t qoff = kUnit - 4099;
  r = Put(6, 2, kV2, kV3, EcMode::kXor, q, qoff);
  ASSERT_TRUE(r.ok() && r->accepted) << r.status().ToString();
  std::string c = b;
  for (size_t i = 0; i < q.size(); i++) c[qoff + i] ^= q[i];
  EXPECT_SAME(Get(6, 2, kV3), c);
  EXPECT_SAME(Get(6, 2, kV2), b);
  // XORing the same delta again restores b's bytes (new version, COW again).
  r = Put(6, 2, kV3, kV4, EcMode::kXor, q, qoff);
  ASSERT_TRUE(r.ok() && r->accepted);
  EXPECT_SAME(Get(6, 2, kV4), b);
  EXPECT_SAME(Get(6, 2, kV3), c);
  // RANGE and XOR on a never-written unit work on zeros.
  r = Put(6, 5, kV0, kV1, EcMode::kXor, p, 10);
  ASSERT_TRUE(r.ok() && r->accepted);
  std::string z(kUnit, '\0');
  z.replace(10, p.size(), p);
  EXPECT_SAME(Get(6, 5, kV1), z);
}

TEST_F(EcUnitStoreTest, RepairInPlaceOverCorruptBlock) {
  const std::string a = Content(kV2);
  Full(7, 1, kV0, kV1, Content(kV1));
  Full(7, 1, kV1, kV2, a);  // kV2 lives in slot 1 at unit 1
  Poke(chunks_->ObjectPath(7, 1), kUnit + kB + 3);
  Status st;
  Get(7, 1, kV2, &st);
  EXPECT_EQ(st.err(), EBADMSG);
  // The first block still reads.
  EXPECT_SAME(Get(7, 1, kV2, nullptr, nullptr, 0, kB), a.substr(0, kB));
  // A copy-on-write RANGE from the corrupt base fails rather than spread it.
  auto r = Put(7, 1, kV2, kV3, EcMode::kRange, "x", 5);
  EXPECT_EQ(r.status().err(), EBADMSG);
  // Repair: version == base, the whole bad block, rewritten in place.
  r = Put(7, 1, kV2, kV2, EcMode::kRange, a.substr(kB, kB), kB);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->accepted);
  EXPECT_EQ(r->cur, kV2);
  EXPECT_SAME(Get(7, 1, kV2), a);
  EXPECT_SAME(Get(7, 1, kV1), Content(kV1));  // prev untouched
  EXPECT_EQ(State(7, 1).cur, kV2);
  EXPECT_EQ(State(7, 1).prev, kV1);
  // A FULL repair works too; XOR/BUMP cannot be repairs.
  Poke(chunks_->ObjectPath(7, 1), kUnit + 17);
  r = Put(7, 1, kV2, kV2, EcMode::kFull, a);
  ASSERT_TRUE(r.ok() && r->accepted) << r.status().ToString();
  EXPECT_SAME(Get(7, 1, kV2), a);
  EXPECT_EQ(Put(7, 1, kV2, kV2, EcMode::kXor, "x", 0).status().err(), EINVAL);
  EXPECT_EQ(Put(7, 1, kV2, kV2, EcMode::kBump, "").status().err(), EINVAL);
}

TEST_F(EcUnitStoreTest, DamagedRecordDetectedAndHealedByFullWrite) {
  Full(8, 2, kV0, kV1, Content(kV1, 2));
  Full(8, 3, kV0, kV1, Content(kV1, 3));
  Poke(units_->RecordPath(8), 2 * kUnitRecordSize + 9);
  std::vector<UnitState> v;
  ASSERT_TRUE(units_->Versions(8, 0, 4, &v).ok());
  EXPECT_TRUE(v[2].damaged);
  EXPECT_EQ(v[2].cur, kV0);
  EXPECT_FALSE(v[3].damaged);
  EXPECT_EQ(v[3].cur, kV1);
  EXPECT_GE(units_->damaged_records(), 1u);
  Status st;
  Get(8, 2, kV0, &st);
  EXPECT_EQ(st.err(), EBADMSG);
  Get(8, 2, kV1, &st);
  EXPECT_EQ(st.err(), EBADMSG);
  // Writers see {0,0}; only a FULL write from {0,0} is taken.
  auto r = Put(8, 2, kV1, kV2, EcMode::kFull, Content(kV2, 2));
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->accepted);
  EXPECT_EQ(r->cur, kV0);
  EXPECT_EQ(Put(8, 2, kV0, kV2, EcMode::kRange, "abc", 0).status().err(), EBADMSG);
  ASSERT_TRUE(units_->Rollback(8, 2, kUnit, kV1).ok());  // no-op
  Full(8, 2, kV0, kV1, Content(kV1, 2));
  EXPECT_SAME(Get(8, 2, kV1), Content(kV1, 2));
  EXPECT_FALSE(State(8, 2).damaged);
  EXPECT_SAME(Get(8, 3, kV1), Content(kV1, 3));
  // A record overwritten by garbage of the right length is damaged too.
  {
    int fd = ::open(units_->RecordPath(8).c_str(), O_RDWR);
    std::string junk = Pattern(kUnitRecordSize, 3);
    ASSERT_EQ(::pwrite(fd, junk.data(), junk.size(), 3 * kUnitRecordSize), (ssize_t)junk.size());
    ::close(fd);
  }
  EXPECT_TRUE(State(8, 3).damaged);
}

TEST_F(EcUnitStoreTest, RecordCodecRoundTrip) {
  FileUnitStore::Record r, d;
  r.cur = {7, 0xdeadbeefcafef00dull};
  r.cur_slot = 1;
  r.prev = {6, 5};
  r.prev_slot = 0;
  r.prev_present = true;
  r.unit_log2 = 20;
  char buf[kUnitRecordSize];
  EncodeUnitRecord(r, buf);
  ASSERT_TRUE(DecodeUnitRecord(buf, &d));
  EXPECT_EQ(d.cur, r.cur);
  EXPECT_EQ(d.prev, r.prev);
  EXPECT_EQ(d.cur_slot, 1);
  EXPECT_EQ(d.prev_slot, 0);
  EXPECT_TRUE(d.prev_present);
  EXPECT_EQ(d.unit_log2, 20);
  for (size_t i = 0; i < kUnitRecordSize; i++) {  // every single-byte change is caught
    char c[kUnitRecordSize];
    std::memcpy(c, buf, sizeof(c));
    c[i] ^= 1;
    EXPECT_FALSE(DecodeUnitRecord(c, &d)) << i;
  }
  char zero[kUnitRecordSize] = {};
  ASSERT_TRUE(DecodeUnitRecord(zero, &d));
  EXPECT_EQ(d.cur, kV0);
}

TEST_F(EcUnitStoreTest, TruncateAndDelete) {
  for (uint64_t i = 0; i < 4; i++) {
    Full(9, i, kV0, kV1, Content(kV1, i));
    Full(9, i, kV1, kV2, Content(kV2, i));
  }
  EXPECT_SAME(Get(9, 3, kV2), Content(kV2, 3));
  EXPECT_EQ(units_->Truncate(9, kUnit, kUnit + 1).err(), EINVAL);
  ASSERT_TRUE(units_->Truncate(9, kUnit, 2 * kUnit).ok());
  std::vector<UnitState> v;
  ASSERT_TRUE(units_->Versions(9, 0, 4, &v).ok());
  EXPECT_EQ(v[1].cur, kV2);
  EXPECT_EQ(v[1].prev, kV1);
  EXPECT_EQ(v[2].cur, kV0);
  EXPECT_EQ(v[3].prev, kV0);
  EXPECT_SAME(Get(9, 1, kV1), Content(kV1, 1));
  EXPECT_SAME(Get(9, 1, kV2), Content(kV2, 1));
  EXPECT_SAME(Get(9, 3, kV0), std::string(kUnit, '\0'));
  EXPECT_LE(fs::file_size(chunks_->ObjectPath(9, 0)), 2ull * kUnit);
  EXPECT_LE(fs::file_size(chunks_->ObjectPath(9, 1)), 2ull * kUnit);
  EXPECT_EQ(fs::file_size(units_->RecordPath(9)), 2 * kUnitRecordSize);
  // Writing a truncated unit again starts from {0,0} and reads back exactly.
  auto r = Put(9, 3, kV0, kV1, EcMode::kRange, "hello", 7);
  ASSERT_TRUE(r.ok() && r->accepted);
  std::string want(kUnit, '\0');
  want.replace(7, 5, "hello");
  EXPECT_SAME(Get(9, 3, kV1), want);
  ASSERT_TRUE(units_->Fsync(9).ok());
  ASSERT_TRUE(units_->Delete(9).ok());
  for (const std::string& p : {chunks_->ObjectPath(9, 0), chunks_->ObjectPath(9, 1),
                               chunks_->ChecksumPath(9, 0), chunks_->ChecksumPath(9, 1),
                               units_->RecordPath(9)})
    EXPECT_FALSE(fs::exists(p)) << p;
  ASSERT_TRUE(units_->Versions(9, 0, 4, &v).ok());
  EXPECT_EQ(v[1].cur, kV0);
  EXPECT_SAME(Get(9, 1, kV0), std::string(kUnit, '\0'));
  ASSERT_TRUE(units_->Delete(9).ok());
  ASSERT_TRUE(units_->Fsync(9).ok());
  ASSERT_TRUE(units_->Truncate(9, kUnit, 0).ok());
}

TEST_F(EcUnitStoreTest, BadRequestsAreClear) {
  auto r = Put(1, 0, kV0, kV1, EcMode::kFull, std::string(1000, 'a'), 0, 1000);
  EXPECT_EQ(r.status().err(), EINVAL);
  EXPECT_NE(r.status().message().find("power of two"), std::string::npos);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kFull, "", 0, 32 << 10).status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kFull, "", 0, 128u << 20).status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kFull, std::string(kUnit - 1, 'a')).status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kRange, "ab", kUnit - 1).status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kRange, "").status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV1, EcMode::kBump, "x").status().err(), EINVAL);
  EXPECT_EQ(Put(1, 0, kV0, kV0, EcMode::kFull, Content(kV1)).status().err(), EINVAL);
  EXPECT_EQ(Put(1, uint64_t{1} << 60, kV0, kV1, EcMode::kBump, "").status().err(), EINVAL);
  std::string out(16, '\0');
  EXPECT_EQ(units_->Read(1, 0, kUnit, kV0, kUnit - 8, 16, out.data()).status().err(), EINVAL);
  std::vector<UnitState> v;
  EXPECT_EQ(units_->Versions(1, 0, 4097, &v).err(), EINVAL);
  // A unit size that disagrees with the one recorded.
  Full(1, 0, kV0, kV1, Content(kV1));
  r = Put(1, 0, kV1, kV2, EcMode::kBump, "", 0, 256 << 10);
  EXPECT_EQ(r.status().err(), EINVAL);
  EXPECT_NE(r.status().message().find("disagrees"), std::string::npos) << r.status().message();
  EXPECT_EQ(State(1, 0).cur, kV1);
}

// Writers racing from the same base: exactly one wins each round, and the unit
// always holds the content of the version its record names.
TEST_F(EcUnitStoreTest, RacingWritersOneWinsPerVersion) {
  constexpr int kThreads = 6, kTries = 40;
  std::atomic<int> accepted{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kTries; i++) {
        UnitState s = State(11, 0);
        UnitVer nv{s.cur.seq + 1, uint64_t(t + 1)};
        EcMode mode = (i % 3 == 0) ? EcMode::kFull : (i % 3 == 1 ? EcMode::kBump : EcMode::kRange);
        std::string data = mode == EcMode::kFull ? Content(nv) : (mode == EcMode::kRange ? "r" : "");
        auto r = Put(11, 0, s.cur, nv, mode, data, 0);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        if (r->accepted) accepted++;
        else EXPECT_NE(r->cur, s.cur);
        std::string out(kUnit, '\0');
        auto g = units_->Read(11, 0, kUnit, kV0, 0, kUnit, out.data());
        ASSERT_TRUE(g.ok()) << g.status().ToString();
      }
    });
  for (auto& t : ts) t.join();
  // Each accepted write added exactly one to seq.
  EXPECT_EQ(State(11, 0).cur.seq, static_cast<uint64_t>(accepted.load()));
  EXPECT_GE(accepted.load(), kTries);
}

// ---- the EC_* RPCs over real TCP ----

class EcServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = Target::Open(dir_.path(), "worker-uuid-ec");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    std::vector<std::unique_ptr<Target>> ts;
    ts.push_back(std::move(*t));
    service_ = std::make_unique<StorageService>(std::move(ts));
    ASSERT_TRUE(service_->SetTargetId(0, 3).ok());
    auto tr = rpc::MakeTransport("tcp");
    ASSERT_TRUE(tr.ok());
    transport_ = *tr;
    ASSERT_TRUE(service_->Start(*transport_, "127.0.0.1", 0, 8).ok());
    ep_ = rpc::Endpoint{"127.0.0.1", service_->port()};
    pool_ = std::make_unique<rpc::ChannelPool>(transport_, 2);
  }
  static void Ref(pb::EcUnitRef* ref, uint64_t ino, uint64_t idx, uint32_t target = 3,
                  uint32_t unit = kUnit) {
    ref->set_ino(ino);
    ref->set_target_id(target);
    ref->set_local_index(idx);
    ref->set_unit(unit);
  }
  static void Ver(pb::UnitVersion* p, UnitVer v) {
    p->set_seq(v.seq);
    p->set_tag(v.tag);
  }
  Status EcWrite(uint64_t ino, uint64_t idx, UnitVer base, UnitVer ver, pb::EcWriteMode mode,
                 const std::string& data, uint32_t off, pb::EcWriteResponse* resp,
                 int64_t len = -1, uint32_t target = 3) {
    pb::EcWriteRequest req;
    Ref(req.mutable_ref(), ino, idx, target);
    Ver(req.mutable_base(), base);
    Ver(req.mutable_version(), ver);
    req.set_mode(mode);
    req.set_offset(off);
    req.set_length(len < 0 ? static_cast<uint32_t>(data.size()) : static_cast<uint32_t>(len));
    rpc::CallSpec spec;
    spec.method = pb::EC_WRITE;
    spec.request = &req;
    spec.response = resp;
    if (!data.empty()) spec.bulk_out = {rpc::ConstBuf{data.data(), data.size()}};
    return pool_->Call(ep_, spec);
  }
  Status EcRead(uint64_t ino, uint64_t idx, UnitVer want, uint32_t off, uint32_t len,
                std::string* out, UnitVer* got) {
    pb::EcReadRequest req;
    Ref(req.mutable_ref(), ino, idx);
    req.set_offset(off);
    req.set_length(len);
    Ver(req.mutable_want(), want);
    pb::EcReadResponse resp;
    out->assign(len, '\xAA');
    rpc::CallSpec spec;
    spec.method = pb::EC_READ;
    spec.request = &req;
    spec.response = &resp;
    spec.bulk_in = out->data();
    spec.bulk_in_cap = len;
    auto call = pool_->Start(ep_, spec);
    Status st = call->Wait();
    if (st.ok()) {
      EXPECT_EQ(call->bulk_in_len(), len);
      *got = UnitVer{resp.version().seq(), resp.version().tag()};
    }
    return st;
  }
  Status Versions(uint64_t ino, uint64_t first, uint32_t count, pb::EcVersionsResponse* resp) {
    pb::EcVersionsRequest req;
    req.set_ino(ino);
    req.set_target_id(3);
    req.set_first(first);
    req.set_count(count);
    req.set_unit(kUnit);
    rpc::CallSpec spec;
    spec.method = pb::EC_VERSIONS;
    spec.request = &req;
    spec.response = resp;
    return pool_->Call(ep_, spec);
  }
  Status Rollback(uint64_t ino, uint64_t idx, UnitVer v) {
    pb::EcRollbackRequest req;
    Ref(req.mutable_ref(), ino, idx);
    Ver(req.mutable_version(), v);
    pb::Empty resp;
    rpc::CallSpec spec;
    spec.method = pb::EC_ROLLBACK;
    spec.request = &req;
    spec.response = &resp;
    return pool_->Call(ep_, spec);
  }
  Status Object(pb::Method m, uint64_t ino, uint64_t size, uint32_t unit) {
    pb::ObjectRequest req;
    req.set_ino(ino);
    req.set_target_id(3);
    req.set_size(size);
    req.set_unit(unit);
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

TEST_F(EcServiceTest, VersionedUnitsOverTcp) {
  pb::EcWriteResponse w;
  ASSERT_TRUE(EcWrite(20, 1, kV0, kV1, pb::EC_FULL, Content(kV1, 1), 0, &w).ok());
  EXPECT_TRUE(w.accepted());
  EXPECT_EQ(w.cur().seq(), 1u);
  const std::string p = Pattern(5000, 9);
  ASSERT_TRUE(EcWrite(20, 1, kV1, kV2, pb::EC_RANGE, p, 64000, &w).ok());
  EXPECT_TRUE(w.accepted());
  // Refused: base is stale; told the current version.
  ASSERT_TRUE(EcWrite(20, 1, kV1, UnitVer{2, 5}, pb::EC_BUMP, "", 0, &w).ok());
  EXPECT_FALSE(w.accepted());
  EXPECT_EQ(w.cur().seq(), 2u);
  EXPECT_EQ(w.cur().tag(), 22u);

  std::string out;
  UnitVer got;
  ASSERT_TRUE(EcRead(20, 1, kV0, 0, kUnit, &out, &got).ok());
  std::string want = Content(kV1, 1);
  want.replace(64000, p.size(), p);
  EXPECT_SAME(out, want);
  EXPECT_EQ(got, kV2);
  ASSERT_TRUE(EcRead(20, 1, kV1, 100, 1000, &out, &got).ok());
  EXPECT_SAME(out, Content(kV1, 1).substr(100, 1000));
  EXPECT_EQ(got, kV1);
  EXPECT_EQ(EcRead(20, 1, UnitVer{7, 7}, 0, 10, &out, &got).err(), ESTALE);
  ASSERT_TRUE(EcRead(20, 0, kV0, 0, kUnit, &out, &got).ok());  // never written
  EXPECT_SAME(out, std::string(kUnit, '\0'));
  EXPECT_EQ(got, kV0);

  pb::EcVersionsResponse vr;
  ASSERT_TRUE(Versions(20, 0, 3, &vr).ok());
  ASSERT_EQ(vr.units_size(), 3);
  EXPECT_EQ(vr.units(1).cur().seq(), 2u);
  EXPECT_EQ(vr.units(1).prev().seq(), 1u);
  EXPECT_EQ(vr.units(1).prev().tag(), 11u);
  EXPECT_EQ(vr.units(0).cur().seq(), 0u);
  EXPECT_FALSE(vr.units(1).damaged());

  ASSERT_TRUE(Rollback(20, 1, kV2).ok());
  ASSERT_TRUE(EcRead(20, 1, kV0, 0, kUnit, &out, &got).ok());
  EXPECT_SAME(out, Content(kV1, 1));
  EXPECT_EQ(got, kV1);

  // Object methods with `unit`: fsync, truncate to whole units, delete.
  ASSERT_TRUE(EcWrite(20, 4, kV0, kV1, pb::EC_FULL, Content(kV1, 4), 0, &w).ok());
  ASSERT_TRUE(Object(pb::FSYNC_OBJECT, 20, 0, kUnit).ok());
  EXPECT_EQ(Object(pb::TRUNCATE_OBJECT, 20, kUnit + 5, kUnit).err(), EINVAL);
  ASSERT_TRUE(Object(pb::TRUNCATE_OBJECT, 20, 2 * kUnit, kUnit).ok());
  ASSERT_TRUE(Versions(20, 0, 5, &vr).ok());
  EXPECT_EQ(vr.units(1).cur().seq(), 1u);
  EXPECT_EQ(vr.units(4).cur().seq(), 0u);
  ASSERT_TRUE(Object(pb::DELETE_OBJECT, 20, 0, 0).ok());  // unit not needed to delete
  auto* units = dynamic_cast<FileUnitStore*>(&service_->target(0).units());
  ASSERT_NE(units, nullptr);
  EXPECT_FALSE(fs::exists(units->RecordPath(20)));
  EXPECT_FALSE(fs::exists(units->chunks().ObjectPath(20, 1)));
  EXPECT_FALSE(fs::exists(units->chunks().ObjectPath(20, 0)));
}

TEST_F(EcServiceTest, ErrorsOverTcp) {
  pb::EcWriteResponse w;
  Status st = EcWrite(21, 0, kV0, kV1, pb::EC_RANGE, "abc", 0, &w, 5);
  EXPECT_EQ(st.err(), EINVAL);
  EXPECT_NE(st.message().find("bulk is 3 bytes"), std::string::npos) << st.message();
  st = EcWrite(21, 0, kV0, kV1, pb::EC_FULL, "abc", 0, &w, -1, 99);
  EXPECT_EQ(st.err(), ENOENT);
  EXPECT_NE(st.message().find("unknown target 99"), std::string::npos);
  st = EcWrite(21, 0, kV0, kV1, pb::EC_FULL, "abc", 0, &w);
  EXPECT_EQ(st.err(), EINVAL);
  EXPECT_NE(st.message().find("length == unit"), std::string::npos) << st.message();
  std::string out;
  UnitVer got;
  EXPECT_EQ(EcRead(21, 0, kV0, kUnit - 1, 2, &out, &got).err(), EINVAL);
  pb::EcVersionsResponse vr;
  EXPECT_EQ(Versions(21, 0, 5000, &vr).err(), EINVAL);
  // Corrupt the unit's block behind the store's back: EBADMSG, like READ_UNIT.
  ASSERT_TRUE(EcWrite(21, 0, kV0, kV1, pb::EC_FULL, Content(kV1), 0, &w).ok());
  auto* units = dynamic_cast<FileUnitStore*>(&service_->target(0).units());
  {
    int fd = ::open(units->chunks().ObjectPath(21, 0).c_str(), O_RDWR);
    char c = 0x42;
    ASSERT_EQ(::pwrite(fd, &c, 1, 5), 1);
    ::close(fd);
  }
  st = EcRead(21, 0, kV0, 0, 100, &out, &got);
  EXPECT_EQ(st.err(), EBADMSG);
  EXPECT_NE(st.message().find("checksum mismatch"), std::string::npos) << st.message();
  // Repaired in place over the wire.
  ASSERT_TRUE(EcWrite(21, 0, kV1, kV1, pb::EC_RANGE, Content(kV1).substr(0, kB), 0, &w).ok());
  EXPECT_TRUE(w.accepted());
  ASSERT_TRUE(EcRead(21, 0, kV0, 0, kUnit, &out, &got).ok());
  EXPECT_SAME(out, Content(kV1));
}

}  // namespace
}  // namespace cfs::storage
