// kill -9 of cfs-meta during a storm of creates, writes and renames from
// several threads through the mount. Every operation that returned success is
// recorded; after `cfs local down` the M-worker's database passes
// `cfs-meta --check`, and after `cfs local up` every acknowledged create and
// rename is visible, renames are atomic (a file is under exactly one of its
// names), fsynced content is intact and no directory entry dangles.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr int kThreads = 4;

struct Op {
  std::string name;      // created as storm/NAME
  std::string renamed;   // rename target ("" if no rename was tried)
  uint64_t size = 0;
  uint64_t seed = 0;
  bool created = false;  // open(O_CREAT|O_EXCL) returned a descriptor
  bool synced = false;   // write + fsync returned success
  bool rename_ok = false;
};

// All state lives on the heap: if a thread hangs we detach it and leak this.
struct Storm {
  std::atomic<bool> stop{false};
  std::atomic<int> acked{0};
  std::vector<std::vector<Op>> ops{kThreads};
  std::vector<std::thread> threads;
};

void StormThread(Storm* s, const std::string& mnt, int round, int t) {
  std::string buf;
  for (int n = 0; !s->stop.load(); n++) {
    Op op;
    op.name = "c" + std::to_string(round) + "-" + std::to_string(t) + "-" + std::to_string(n);
    op.size = (static_cast<uint64_t>(n) * 7919) % 70000;
    op.seed = round * 1000000ull + t * 100000ull + n;
    std::string path = mnt + "/storm/" + op.name;
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd >= 0) {
      op.created = true;
      s->acked++;
      buf.resize(op.size);
      FillPattern(buf.data(), op.size, op.seed);
      if (write(fd, buf.data(), op.size) == static_cast<ssize_t>(op.size) && fsync(fd) == 0)
        op.synced = true;
      close(fd);
    }
    // Rename every other file: across directories or within storm/.
    if (n % 2 == 0) {
      op.renamed = (n % 4 == 0 ? "moved/r" : "storm/s") + op.name.substr(1);
      if (rename(path.c_str(), (mnt + "/" + op.renamed).c_str()) == 0) {
        op.rename_ok = true;
        s->acked++;
      }
    }
    s->ops[t].push_back(op);
    if (!op.created) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // M-worker down
  }
}

bool Exists(const std::string& p) {
  struct stat st;
  return lstat(p.c_str(), &st) == 0;
}

class MetaCrashMountTest : public ::testing::Test {};

TEST_F(MetaCrashMountTest, KillDuringCreateRenameStorm) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  ASSERT_EQ(mkdir(c.Path("storm").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(c.Path("moved").c_str(), 0755), 0);
  std::vector<Op> all;

  for (int round = 0; round < 2; round++) {
    auto* s = new Storm;
    for (int t = 0; t < kThreads; t++) s->threads.emplace_back(StormThread, s, c.mnt(), round, t);
    // Let the storm run, then kill the M-worker in the middle of it.
    for (int i = 0; i < 100 && s->acked.load() < 400; i++)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    int acked_before_kill = s->acked.load();
    pid_t meta = c.MetaPid();
    ASSERT_GT(meta, 0);
    LocalCluster::KillAndWait(meta, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    s->stop = true;
    printf("round %d: %d operations acknowledged before kill -9 of cfs-meta (pid %d)\n", round,
           acked_before_kill, meta);
    EXPECT_GT(acked_before_kill, 20) << "the storm barely ran before the kill";

    // down unmounts and stops the rest; threads blocked in the mount return then.
    auto t_down = std::chrono::steady_clock::now();
    std::string down = c.Down();
    printf("round %d: cfs local down took %.1f s\n", round,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t_down).count());
    EXPECT_EQ(down, "") << "cfs local down after the crash";
    auto joined = std::make_shared<std::atomic<bool>>(false);
    std::thread([s, joined] {
      for (auto& t : s->threads) t.join();
      *joined = true;
    }).detach();
    for (int i = 0; i < 900 && !*joined; i++) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    // On a hang, s and its threads are left alone (leaked) so nothing dangles.
    ASSERT_TRUE(*joined) << "storm threads still blocked in the mount 90 s after cfs local down";
    printf("round %d: storm threads done %.1f s after down started\n", round,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t_down).count());
    for (auto& v : s->ops) all.insert(all.end(), v.begin(), v.end());
    delete s;

    // The crashed database checks clean, with nothing running on it.
    std::string out;
    int rc = RunWithTimeout(300, Bin("cfs-meta") + " --check --db '" + c.dir() + "/meta'", &out);
    EXPECT_EQ(rc, 0) << "cfs-meta --check after kill -9 (round " << round << "):\n" << out;

    auto t_up = std::chrono::steady_clock::now();
    ASSERT_EQ(c.Up(), "") << "round " << round;
    printf("round %d: check and up took %.1f s\n", round,
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t_up).count());

    // Every acknowledged operation is there; renames are atomic.
    int checked = 0, content_checked = 0;
    for (const auto& op : all) {
      std::string orig = c.Path("storm/" + op.name);
      std::string moved = op.renamed.empty() ? "" : c.Path(op.renamed);
      bool at_orig = Exists(orig), at_moved = !moved.empty() && Exists(moved);
      EXPECT_FALSE(at_orig && at_moved) << op.name << " exists under both names";
      if (op.created) {
        EXPECT_TRUE(at_orig || at_moved) << "acknowledged create of " << op.name << " lost";
        checked++;
      }
      if (op.rename_ok) {
        EXPECT_TRUE(at_moved && !at_orig) << "acknowledged rename " << op.name << " -> " << op.renamed
                                          << " lost (at_orig=" << at_orig << ")";
      }
      if (op.synced && (at_orig || at_moved)) {
        EXPECT_EQ(CheckPatternFile(at_orig ? orig : moved, op.size, op.seed), "")
            << "fsynced content of " << op.name;
        content_checked++;
      }
    }
    printf("round %d: %d acknowledged creates verified, %d contents checked\n", round, checked,
           content_checked);
    // No dangling entries: everything listed can be stat'ed and is a name we tried.
    std::set<std::string> tried;
    for (const auto& op : all) {
      tried.insert("storm/" + op.name);
      if (!op.renamed.empty()) tried.insert(op.renamed);
    }
    for (const char* d : {"storm", "moved"}) {
      int err = 0;
      for (const auto& n : ListDir(c.Path(d), &err)) {
        std::string rel = std::string(d) + "/" + n;
        struct stat st;
        EXPECT_EQ(lstat(c.Path(rel).c_str(), &st), 0) << "dangling entry " << rel << ": " << strerror(errno);
        EXPECT_TRUE(tried.count(rel)) << "unexpected entry " << rel;
      }
      EXPECT_EQ(err, 0) << "readdir " << d;
    }
    // And the namespace works normally again.
    ASSERT_TRUE(WritePatternFile(c.Path("storm/after-" + std::to_string(round)), 100000, 9));
    EXPECT_EQ(CheckPatternFile(c.Path("storm/after-" + std::to_string(round)), 100000, 9), "");
    ASSERT_EQ(unlink(c.Path("storm/after-" + std::to_string(round)).c_str()), 0);
  }

  // A clean shutdown also leaves a database that checks clean.
  ASSERT_EQ(c.Down(), "");
  std::string out;
  EXPECT_EQ(RunWithTimeout(300, Bin("cfs-meta") + " --check --db '" + c.dir() + "/meta'", &out), 0) << out;
}

}  // namespace
}  // namespace cfs::test
