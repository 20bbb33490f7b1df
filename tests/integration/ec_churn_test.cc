// Writers keep going while S-workers of a 6-worker 4+2 cluster are killed
// (kill -9) and restarted one after another, never more than two down at once.
// Three threads create files of mixed sizes (partial and full stripes) and
// overwrite ranges of them, each op followed by fsync. A model of every file
// is updated only after fsync succeeded. Afterwards, with every worker back and
// the rebuild state idle, every file matches its model; then two other workers
// are killed and every file matches again.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kKiB = 1024;
constexpr uint64_t kMiB = 1024 * kKiB;
constexpr int kThreads = 3;
constexpr int kFilesPerThread = 5;

struct ModelFile {
  std::string path;
  std::string content;   // the last fsynced content
  bool exists = false;   // created and fsynced at least once
  bool unknown = false;  // an op on it failed: content not checkable
};

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<int> ops{0};
  std::mutex mu;
  std::vector<std::string> errors;
  std::vector<std::vector<ModelFile>> files{kThreads};
};

void Fail(Shared* s, const std::string& e) {
  std::lock_guard<std::mutex> g(s->mu);
  if (s->errors.size() < 20) s->errors.push_back(e);
}

bool PwriteAll(int fd, const std::string& b, uint64_t off) {
  return pwrite(fd, b.data(), b.size(), static_cast<off_t>(off)) == static_cast<ssize_t>(b.size());
}

void Writer(Shared* s, int t) {
  std::mt19937_64 rng(1234 + t);
  // Sizes around the 4 MiB stripe and 1 MiB unit of 4+2 with unit 1M.
  const uint64_t sizes[] = {1, 4095, 65536 + 3, kMiB - 7, kMiB, 3 * kMiB + 5, 4 * kMiB, 4 * kMiB + 1,
                            9 * kMiB + 12345};
  for (uint64_t n = 0; !s->stop.load(); n++) {
    ModelFile& f = s->files[t][rng() % kFilesPerThread];
    if (f.unknown) continue;
    uint64_t seed = (static_cast<uint64_t>(t) << 40) + n;
    bool create = !f.exists || rng() % 4 == 0;
    std::string next;
    int fd;
    bool ok;
    const char* step = "open";
    if (create) {
      next.resize(sizes[rng() % std::size(sizes)]);
      FillPattern(next.data(), next.size(), seed);
      fd = open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ok = fd >= 0 && (step = "pwrite", PwriteAll(fd, next, 0));
    } else {
      // Overwrite (possibly extending) a range: a partial stripe, or a few stripes.
      next = f.content;
      uint64_t off = rng() % (next.size() + 1);
      uint64_t len = 1 + rng() % (rng() % 3 == 0 ? 6 * kMiB : 200 * kKiB);
      if (next.size() < off + len) next.resize(off + len);
      std::string b(len, '\0');
      FillPattern(b.data(), len, seed, off);
      memcpy(next.data() + off, b.data(), len);
      fd = open(f.path.c_str(), O_WRONLY);
      ok = fd >= 0 && (step = "pwrite", PwriteAll(fd, b, off));
    }
    int err = errno;
    if (ok && fsync(fd) != 0) ok = false, err = errno, step = "fsync";
    if (fd >= 0 && close(fd) != 0 && ok) ok = false, err = errno, step = "close";
    if (!ok) {
      f.unknown = true;
      Fail(s, f.path + (create ? " create" : " overwrite") + ": " + step + ": " + strerror(err));
      continue;
    }
    f.content = std::move(next);
    f.exists = true;
    s->ops++;
  }
}

std::string Verify(const Shared& s) {
  std::string err = DropCaches();
  if (!err.empty()) return err;
  for (const auto& per : s.files)
    for (const auto& f : per) {
      if (!f.exists || f.unknown) continue;
      bool ok = false;
      std::string got = ReadFileStr(f.path, &ok);
      if (!ok) return "cannot read " + f.path;
      if (got.size() != f.content.size())
        return f.path + ": size " + std::to_string(got.size()) + " != " + std::to_string(f.content.size());
      if (got != f.content) {
        size_t i = 0;
        while (got[i] == f.content[i]) i++;
        return f.path + ": content differs at byte " + std::to_string(i);
      }
    }
  return "";
}

TEST(EcChurnTest, WritersSurviveWorkersComingAndGoing) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  Shared s;
  for (int t = 0; t < kThreads; t++)
    for (int i = 0; i < kFilesPerThread; i++)
      s.files[t].push_back({c.Path("w" + std::to_string(t) + "-" + std::to_string(i)), "", false, false});
  std::vector<std::thread> th;
  for (int t = 0; t < kThreads; t++) th.emplace_back(Writer, &s, t);

  // Pairs (0,3), (1,4), (2,5): kill a, kill b, restart a, restart b, wait until the
  // rebuild is idle. Never more than two down, and a returning worker is resynced
  // before the next one goes (a stale worker is no redundancy: killing another
  // before its resync would be a third failure).
  auto churn = [&c]() -> std::string {
    std::mt19937 rng(99);
    auto pause = [&rng] { std::this_thread::sleep_for(std::chrono::milliseconds(1000 + rng() % 2000)); };
    const int pairs[][2] = {{0, 3}, {1, 4}, {2, 5}};
    for (const auto& p : pairs) {
      for (int w : p) {
        pause();
        if (!KillWorker(c, w)) return "worker " + std::to_string(w) + " was not running";
      }
      for (int w : p) {
        pause();
        std::string e = c.StartWorker(w);
        if (!e.empty()) return e;
      }
      std::string e = WaitRebuildIdle(c, 120);
      if (!e.empty()) return "workers " + std::to_string(p[0]) + ", " + std::to_string(p[1]) + " back: " + e;
    }
    pause();
    return "";
  };
  std::string churn_err = churn();
  s.stop = true;
  for (auto& t : th) t.join();
  ASSERT_EQ(churn_err, "");
  {
    std::lock_guard<std::mutex> g(s.mu);
    EXPECT_TRUE(s.errors.empty()) << "writes failed with at most two workers down: " << s.errors[0];
  }
  EXPECT_GT(s.ops.load(), 20) << "the writers hardly ran";
  fprintf(stderr, "%d fsynced ops\n", s.ops.load());

  ASSERT_EQ(WaitRebuildIdle(c, 120), "");
  EXPECT_EQ(Verify(s), "") << "all workers up, rebuild idle";
  // Lose two workers again (every one has been away and resynced by now).
  ASSERT_TRUE(KillWorker(c, 2)) << "worker " << 2;
  ASSERT_TRUE(KillWorker(c, 3)) << "worker " << 3;
  EXPECT_EQ(Verify(s), "") << "workers 2 and 3 down";
}

// The smallest case of the churn above that needs the returning worker's
// resync to handle a truncate it missed: a file is written, one S-worker is
// down while the file is truncated (O_TRUNC) and rewritten shorter, the worker
// comes back; the rebuild must reach idle and the file must read right with
// two other workers down.
TEST(EcChurnTest, TruncateWhileWorkerDownResyncs) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  const std::string f = c.Path("t");
  ASSERT_TRUE(WritePatternFileSynced(f, 9 * kMiB, 1));
  ASSERT_TRUE(KillWorker(c, 1));
  ASSERT_TRUE(WritePatternFileSynced(f, kMiB + 5, 2));  // O_TRUNC, then a partial first stripe
  ASSERT_EQ(c.StartWorker(1), "");
  std::string e = WaitRebuildIdle(c, 60);
  EXPECT_EQ(e, "");
  ASSERT_TRUE(KillWorker(c, 2));
  ASSERT_TRUE(KillWorker(c, 3));
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(f, kMiB + 5, 2), "");
}

}  // namespace
}  // namespace cfs::test
