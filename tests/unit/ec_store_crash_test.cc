// kill -9 of a process writing versioned units at random moments: after a
// reopen every unit reads its cur (and its prev, when one is kept) with exactly
// the content of that version, and the store keeps working. The child runs a
// deterministic sequence of FULL/RANGE/XOR/BUMP/ROLLBACK operations; the
// parent replays the same sequence in memory to know each version's content.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "common/checksum.h"
#include "file_chunk_store.h"
#include "file_unit_store.h"

namespace cfs::storage {
namespace {

namespace fs = std::filesystem;
constexpr uint32_t kUnit = 256 << 10;
constexpr uint64_t kUnits = 4;
constexpr int kOps = 500;
constexpr uint64_t kIno = 42;

std::string Pattern(size_t len, uint64_t seed) {
  std::string s(len, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < len; i += 8) {
    uint64_t v = rng();
    std::memcpy(&s[i], &v, std::min<size_t>(8, len - i));
  }
  return s;
}

uint64_t Hash(const std::string& s) { return BlockChecksum(s.data(), s.size()); }

struct Op {
  uint64_t idx = 0;
  bool rollback = false;
  EcMode mode = EcMode::kFull;
  UnitVer base, version;
  uint32_t off = 0;
  std::string data;
};

// The operation sequence and a model of what each unit holds.
class Sim {
 public:
  explicit Sim(uint64_t seed) : rng_(seed), units_(kUnits) {
    for (auto& u : units_) u.cur_content.assign(kUnit, '\0');
  }
  // The next operation, applied to the model; every version's content hash is recorded.
  Op Next(int i) {
    Op op;
    op.idx = rng_() % kUnits;
    Unit& u = units_[op.idx];
    const int kind = static_cast<int>(rng_() % 10);
    op.base = u.cur;
    if (kind == 8 && u.has_prev) {
      op.rollback = true;
      op.version = u.cur;
      u.cur = u.prev;
      u.cur_content = u.prev_content;
      u.has_prev = false;
      return op;
    }
    op.version = UnitVer{u.cur.seq + 1, uint64_t(i) + 1};
    std::string next = u.cur_content;
    if (kind <= 2 || kind >= 8) {
      op.mode = EcMode::kFull;
      op.data = Pattern(kUnit, rng_());
      next = op.data;
    } else if (kind <= 6) {
      op.mode = kind <= 4 ? EcMode::kRange : EcMode::kXor;
      op.off = static_cast<uint32_t>(rng_() % kUnit);
      const uint32_t len = 1 + static_cast<uint32_t>(rng_() % (kUnit - op.off));
      op.data = Pattern(len, rng_());
      for (uint32_t j = 0; j < len; j++) {
        if (op.mode == EcMode::kRange) next[op.off + j] = op.data[j];
        else next[op.off + j] ^= op.data[j];
      }
    } else {
      op.mode = EcMode::kBump;
    }
    u.prev = u.cur;
    u.prev_content = std::move(u.cur_content);
    u.has_prev = true;
    u.cur = op.version;
    u.cur_content = std::move(next);
    hashes_[{op.idx, op.version.seq, op.version.tag}] = Hash(u.cur_content);
    return op;
  }
  // Content hash of version v of unit idx; false if the sequence never made it.
  bool Known(uint64_t idx, UnitVer v, uint64_t* h) const {
    if (v.seq == 0) {
      *h = Hash(std::string(kUnit, '\0'));
      return true;
    }
    auto it = hashes_.find({idx, v.seq, v.tag});
    if (it == hashes_.end()) return false;
    *h = it->second;
    return true;
  }

 private:
  struct Unit {
    UnitVer cur, prev;
    bool has_prev = false;
    std::string cur_content, prev_content;
  };
  std::mt19937_64 rng_;
  std::vector<Unit> units_;
  std::map<std::tuple<uint64_t, uint64_t, uint64_t>, uint64_t> hashes_;
};

[[noreturn]] void ChildRun(const std::string& dir, uint64_t seed) {
  auto chunks = FileChunkStore::Open(dir);
  if (!chunks.ok()) _exit(2);
  FileUnitStore units(chunks->get());
  Sim sim(seed);
  for (int i = 0; i < kOps; i++) {
    Op op = sim.Next(i);
    if (op.rollback) {
      if (!units.Rollback(kIno, op.idx, kUnit, op.version).ok()) _exit(3);
      continue;
    }
    EcWrite w;
    w.ino = kIno;
    w.index = op.idx;
    w.unit = kUnit;
    w.base = op.base;
    w.version = op.version;
    w.mode = op.mode;
    w.offset = op.off;
    w.data = op.data;
    auto r = units.Write(w);
    if (!r.ok() || !r->accepted) _exit(4);
  }
  _exit(0);
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cfs-eccrash-XXXXXX";
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

TEST(EcStoreCrash, KillNineNeverLeavesWrongBytes) {
  int killed = 0;
  for (uint64_t seed = 1; seed <= 8; seed++) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    TempDir dir;
    std::mt19937_64 rng(seed * 7777);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) ChildRun(dir.path(), seed);
    // Kill at a random moment of the run (the child needs a few hundred ms).
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + rng() % 200000));
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status)) {
      killed++;
    } else {
      ASSERT_TRUE(WIFEXITED(status));
      ASSERT_EQ(WEXITSTATUS(status), 0) << "the child's own writes failed";
    }

    Sim sim(seed);
    for (int i = 0; i < kOps; i++) sim.Next(i);
    auto chunks = FileChunkStore::Open(dir.path());
    ASSERT_TRUE(chunks.ok());
    FileUnitStore units(chunks->get());
    std::vector<UnitState> states;
    ASSERT_TRUE(units.Versions(kIno, 0, kUnits, &states).ok());
    std::string buf(kUnit, '\0');
    for (uint64_t idx = 0; idx < kUnits; idx++) {
      SCOPED_TRACE("unit " + std::to_string(idx));
      const UnitState& s = states[idx];
      ASSERT_FALSE(s.damaged);
      uint64_t want;
      ASSERT_TRUE(sim.Known(idx, s.cur, &want)) << "cur {" << s.cur.seq << "," << s.cur.tag << "}";
      auto r = units.Read(kIno, idx, kUnit, UnitVer{}, 0, kUnit, buf.data());
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      EXPECT_EQ(*r, s.cur);
      EXPECT_EQ(Hash(buf), want) << "cur {" << s.cur.seq << "," << s.cur.tag << "} has wrong bytes";
      if (s.prev.seq != 0) {
        ASSERT_TRUE(sim.Known(idx, s.prev, &want));
        r = units.Read(kIno, idx, kUnit, s.prev, 0, kUnit, buf.data());
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_EQ(Hash(buf), want) << "prev has wrong bytes";
      }
      // The store goes on: a full write and a range write from cur.
      EcWrite w;
      w.ino = kIno;
      w.index = idx;
      w.unit = kUnit;
      w.base = s.cur;
      w.version = UnitVer{s.cur.seq + 1, 999999};
      std::string d = Pattern(kUnit, seed * 100 + idx);
      w.data = d;
      auto wr = units.Write(w);
      ASSERT_TRUE(wr.ok() && wr->accepted) << wr.status().ToString();
      w.base = w.version;
      w.version = UnitVer{w.base.seq + 1, 999999};
      w.mode = EcMode::kRange;
      w.offset = 5;
      w.data = "after";
      wr = units.Write(w);
      ASSERT_TRUE(wr.ok() && wr->accepted) << wr.status().ToString();
      d.replace(5, 5, "after");
      ASSERT_TRUE(units.Read(kIno, idx, kUnit, UnitVer{}, 0, kUnit, buf.data()).ok());
      EXPECT_TRUE(buf == d);
    }
  }
  // Most runs must really have been killed mid-way, or the test proves little.
  EXPECT_GE(killed, 4);
}

}  // namespace
}  // namespace cfs::storage
