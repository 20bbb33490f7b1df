// Crash injection on a 6-worker 4+2 cluster (unit 64 KiB, stripe 256 KiB).
// Each round forks a writer that pwrites partial stripes at random offsets
// into three files and fsyncs each write, logging an intent before and a done
// record after (to a local file the parent reads when the writer is dead).
// Even rounds write through the FUSE mount, odd rounds through libcfs in the
// writer process itself, so kill -9 of the writer is a crash of the CFS
// client in the middle of its protocol. At random moments the writer is
// killed and one S-worker is killed and restarted. After each round: every
// worker up, rebuild idle, then two S-workers are killed and every byte must
// hold its last fsynced value (a byte of a write that was not acknowledged
// may hold the old or the new value).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr int kFiles = 3;
constexpr uint64_t kFileSize = 2048 * kKiB;  // 8 stripes of 4 x 64 KiB
constexpr int kRounds = 8;

enum RecType : uint32_t { kIntent = 1, kDone = 2, kFailed = 3 };
struct Rec {
  uint32_t type;
  uint32_t file;
  uint64_t off, len, seed;
};
static_assert(sizeof(Rec) == 32);

std::string Name(int f) { return "cf" + std::to_string(f); }

// The writer child: never returns.
[[noreturn]] void WriterChild(const std::string& mnt, const std::string& meta, const std::string& log, bool libcfs,
                              uint64_t round_seed) {
  int lfd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
  if (lfd < 0) _exit(10);
  // libcfs in this process: the writer's death is the CFS client's death.
  std::unique_ptr<client::Client> cl;
  std::shared_ptr<client::File> files[kFiles];
  int fds[kFiles];
  if (libcfs) {
    auto opts = client::ClientOptions::Parse(meta, "failure_timeout_ms=3000");
    if (!opts.ok()) _exit(11);
    auto r = client::Client::Connect(*opts);
    if (!r.ok()) _exit(11);
    cl = std::move(*r);
  }
  for (int f = 0; f < kFiles; f++) {
    if (libcfs) {
      auto a = cl->Resolve("/" + Name(f));
      if (!a.ok()) _exit(12);
      pb::Attr attr;
      auto h = cl->Open(a->ino(), O_RDWR, &attr);
      if (!h.ok()) _exit(12);
      files[f] = *h;
    } else {
      fds[f] = open((mnt + "/" + Name(f)).c_str(), O_RDWR);
      if (fds[f] < 0) _exit(12);
    }
  }
  std::mt19937_64 rng(round_seed);
  std::string buf;
  for (uint64_t n = 0;; n++) {
    Rec r{kIntent, static_cast<uint32_t>(rng() % kFiles), 0, 0, (round_seed << 20) + n};
    r.off = rng() % kFileSize;
    r.len = 1 + rng() % (rng() % 4 == 0 ? 700 * kKiB : 40 * kKiB);
    r.len = std::min(r.len, kFileSize - r.off);
    buf.resize(r.len);
    FillPattern(buf.data(), r.len, r.seed, r.off);
    if (write(lfd, &r, sizeof r) != sizeof r) _exit(13);
    bool ok;
    if (libcfs) {
      auto w = files[r.file]->Write(buf.data(), r.len, r.off);
      ok = w.ok() && *w == r.len && files[r.file]->Fsync().ok();
    } else {
      ok = pwrite(fds[r.file], buf.data(), r.len, static_cast<off_t>(r.off)) == static_cast<ssize_t>(r.len) &&
           fsync(fds[r.file]) == 0;
    }
    r.type = ok ? kDone : kFailed;
    if (write(lfd, &r, sizeof r) != sizeof r) _exit(13);
    if (!ok) _exit(14);
  }
}

struct Uncertain {
  uint64_t seq, off, len, seed;
};

struct Model {
  std::string content[kFiles];
  std::vector<uint64_t> last_done[kFiles];  // record number of the last fsynced write of each byte
  std::vector<Uncertain> uncertain[kFiles];
  uint64_t seq = 1;
  uint64_t done = 0;

  void Apply(const Rec& r) {
    std::string b(r.len, '\0');
    FillPattern(b.data(), r.len, r.seed, r.off);
    memcpy(content[r.file].data() + r.off, b.data(), r.len);
    std::fill(last_done[r.file].begin() + r.off, last_done[r.file].begin() + r.off + r.len, seq);
  }
  // Reads the writer's log; returns how many writes were not acknowledged.
  int Load(const std::string& log) {
    std::string s = ReadFileStr(log);
    int pending = 0;
    const Rec* intent = nullptr;
    for (size_t at = 0; at + sizeof(Rec) <= s.size(); at += sizeof(Rec), seq++) {
      const Rec* r = reinterpret_cast<const Rec*>(s.data() + at);
      if (r->type == kIntent) {
        intent = r;
      } else if (r->type == kDone) {
        Apply(*r);
        done++;
        intent = nullptr;
      } else {
        uncertain[r->file].push_back({seq, r->off, r->len, r->seed});
        pending++;
        intent = nullptr;
      }
    }
    if (intent) {
      uncertain[intent->file].push_back({seq, intent->off, intent->len, intent->seed});
      pending++;
    }
    return pending;
  }
  // "" if every byte of file f is its last fsynced value or a value of a later unacknowledged write.
  std::string Check(int f, const std::string& got) const {
    if (got.size() != content[f].size()) return Name(f) + ": size " + std::to_string(got.size());
    for (uint64_t i = 0; i < got.size(); i++) {
      if (got[i] == content[f][i]) continue;
      bool allowed = false;
      for (const auto& u : uncertain[f]) {
        if (i < u.off || i >= u.off + u.len || u.seq < last_done[f][i]) continue;
        unsigned char b;
        FillPattern(&b, 1, u.seed, i);
        if (static_cast<unsigned char>(got[i]) == b) allowed = true;
      }
      if (!allowed)
        return Name(f) + ": byte " + std::to_string(i) + " (stripe " + std::to_string(i / (256 * kKiB)) +
               ") is neither its fsynced value nor that of an unacknowledged write";
    }
    return "";
  }
};

TEST(EcCrashTest, FsyncedBytesSurviveClientAndWorkerCrashes) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  o.unit = "64K";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  Model m;
  for (int f = 0; f < kFiles; f++) {
    m.content[f].resize(kFileSize);
    FillPattern(m.content[f].data(), kFileSize, 50 + f);
    m.last_done[f].assign(kFileSize, 0);
    ASSERT_TRUE(WritePatternFileSynced(c.Path(Name(f)), kFileSize, 50 + f, 256 * kKiB));
  }
  const std::string log = c.dir() + "/writer.log";
  std::mt19937_64 rng(20240601);
  int unacked = 0;
  for (int round = 0; round < kRounds; round++) {
    const bool libcfs = round % 2 == 1;
    const uint64_t round_seed = rng();
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) WriterChild(c.mnt(), c.MetaAddr(), log, libcfs, round_seed);

    // Timeline (ms from now): kill the writer; kill one S-worker and restart it (maybe after the writer died).
    const int kill_child_at = 1500 + static_cast<int>(rng() % 3500);
    const int worker = static_cast<int>(rng() % 6);
    const int kill_worker_at = 200 + static_cast<int>(rng() % (kill_child_at + 500));
    const int restart_at = kill_worker_at + 300 + static_cast<int>(rng() % 2500);
    struct Ev {
      int at;
      int what;  // 0 kill writer, 1 kill worker, 2 restart worker
    };
    std::vector<Ev> evs = {{kill_child_at, 0}, {kill_worker_at, 1}, {restart_at, 2}};
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) { return a.at < b.at; });
    auto t0 = std::chrono::steady_clock::now();
    int status = 0;
    for (const auto& e : evs) {
      std::this_thread::sleep_until(t0 + std::chrono::milliseconds(e.at));
      if (e.what == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
      } else if (e.what == 1) {
        ASSERT_TRUE(KillWorker(c, worker)) << "worker " << worker;
      } else {
        ASSERT_EQ(c.StartWorker(worker), "") << "round " << round;
      }
    }
    EXPECT_TRUE(WIFSIGNALED(status)) << "round " << round << ": the writer exited by itself with "
                                     << WEXITSTATUS(status) << " (14: a write or fsync failed)";
    unacked += m.Load(log);
    ASSERT_EQ(WaitRebuildIdle(c), "") << "round " << round;

    // Lose two S-workers, check every byte, bring them back.
    int a = static_cast<int>(rng() % 6), b = static_cast<int>(rng() % 5);
    if (b >= a) b++;
    ASSERT_TRUE(KillWorker(c, a)) << "worker " << a;
    ASSERT_TRUE(KillWorker(c, b)) << "worker " << b;
    ASSERT_EQ(DropCaches(), "");
    for (int f = 0; f < kFiles; f++) {
      bool ok = false;
      std::string got = ReadFileStr(c.Path(Name(f)), &ok);
      ASSERT_TRUE(ok) << Name(f);
      EXPECT_EQ(m.Check(f, got), "") << "round " << round << " (" << (libcfs ? "libcfs" : "mount")
                                     << " writer, worker " << worker << " killed and restarted), workers " << a
                                     << " and " << b << " down";
    }
    ASSERT_EQ(c.StartWorker(a), "");
    ASSERT_EQ(c.StartWorker(b), "");
    ASSERT_EQ(WaitRebuildIdle(c), "");
    if (HasFailure()) break;
  }
  fprintf(stderr, "%llu fsynced writes, %d unacknowledged\n", static_cast<unsigned long long>(m.done), unacked);
  EXPECT_GT(m.done, 10u) << "the writers hardly wrote";
}

}  // namespace
}  // namespace cfs::test
