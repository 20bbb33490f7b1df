// Checkpoint sets end to end against a real cluster (`cfs local up`: 1
// cfs-meta, 6 cfs-storage with 4+2 parity, a FUSE mount): the C API from
// libcfs.so (linked: capi_test checks the exported symbols) and `cfs ckpt` through the
// mount and through --cluster. Every set is checked by content; the crash
// test kills `cfs ckpt commit` at random moments and checks that whatever is
// reported as committed is complete.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cfs/cfs.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

using nlohmann::json;

LocalCluster* cluster = nullptr;

int Sh(const std::string& cmd, std::string* out = nullptr) { return Run(cmd, out); }

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

bool Contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

class CkptTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ClusterOptions o;
    o.stripe = "4+2";  // commit's fsync goes through the parity path
    cluster = new LocalCluster(o);
    std::string err = cluster->Up();
    ASSERT_EQ(err, "") << err;
  }
  static void TearDownTestSuite() {
    delete cluster;
    cluster = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster);
    ASSERT_EQ(cfs_mount(cluster->MetaAddr().c_str(), nullptr, &ctx_), 0);
  }
  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(cfs_unmount(ctx_), 0);
    }
  }

  static std::string M() { return cluster->mnt(); }
  static std::string Cl() { return " --cluster " + cluster->MetaAddr(); }
  // `cfs ckpt ARGS`: exit status, stdout+stderr in *out.
  static int Ckpt(const std::string& args, std::string* out) { return Sh(Bin("cfs") + " ckpt " + args, out); }
  // Same with stdout only (for values and --json).
  static int CkptOut(const std::string& args, std::string* out) {
    return Sh("(" + Bin("cfs") + " ckpt " + args + " 2>/dev/null)", out);
  }

  // Writes FillPattern(seed) [0, size) through the C API.
  static void ApiWrite(cfs_ctx* ctx, const std::string& path, uint64_t size, uint64_t seed,
                       int flags = O_CREAT | O_WRONLY | O_TRUNC, uint64_t from = 0) {
    int fh = cfs_open(ctx, path.c_str(), flags, 0644, nullptr);
    ASSERT_GE(fh, 0) << path;
    std::string buf(1 << 20, '\0');
    for (uint64_t off = from; off < from + size;) {
      size_t n = std::min<uint64_t>(buf.size(), from + size - off);
      FillPattern(buf.data(), n, seed, off);
      ASSERT_EQ(cfs_pwrite(ctx, fh, buf.data(), n, off), static_cast<int64_t>(n)) << path;
      off += n;
    }
    ASSERT_EQ(cfs_close(ctx, fh), 0) << path;
  }
  // "" if path holds exactly FillPattern(seed) [0, size), read through the C API.
  static std::string ApiCheck(cfs_ctx* ctx, const std::string& path, uint64_t size, uint64_t seed) {
    int fh = cfs_open(ctx, path.c_str(), O_RDONLY, 0, nullptr);
    if (fh < 0) return path + ": open: " + std::to_string(fh);
    std::string got(1 << 20, '\0'), want(1 << 20, '\0');
    std::string err;
    for (uint64_t off = 0; off < size && err.empty(); off += got.size()) {
      size_t n = std::min<uint64_t>(got.size(), size - off);
      int64_t r = cfs_pread(ctx, fh, got.data(), got.size(), off);
      FillPattern(want.data(), n, seed, off);
      if (r != static_cast<int64_t>(n)) err = path + ": read " + std::to_string(r) + " at " + std::to_string(off);
      else if (std::memcmp(got.data(), want.data(), n) != 0) err = path + ": content differs in [" + std::to_string(off) + ", +" + std::to_string(n) + ")";
    }
    char c;
    if (err.empty() && cfs_pread(ctx, fh, &c, 1, size) != 0) err = path + ": longer than " + std::to_string(size);
    cfs_close(ctx, fh);
    return err;
  }
  std::vector<cfs_ckpt_info> List(const std::string& job) {
    std::vector<cfs_ckpt_info> v(64);
    int n = cfs_ckpt_list(ctx_, job.c_str(), v.data(), static_cast<int>(v.size()));
    EXPECT_GE(n, 0) << job;
    v.resize(std::max(0, std::min<int>(n, 64)));
    return v;
  }
  std::string Latest(const std::string& job, int* rc = nullptr) {
    char name[256] = {};
    int r = cfs_ckpt_latest(ctx_, job.c_str(), name, sizeof name);
    if (rc) *rc = r;
    return r == 0 ? name : "";
  }
  std::string Begin(const std::string& set) {
    char dir[1024] = {};
    int rc = cfs_ckpt_begin(ctx_, set.c_str(), dir, sizeof dir);
    EXPECT_EQ(rc, 0) << set;
    return dir;
  }

  cfs_ctx* ctx_ = nullptr;
};

struct TestFile {
  std::string path;
  uint64_t size;
  uint64_t seed;
};

// The manifest of a committed set, read through the mount.
json Manifest(const std::string& set_dir) {
  bool ok = false;
  std::string text = ReadFileStr(set_dir + "/.cfs-ckpt", &ok);
  if (!ok) return json();
  return json::parse(text, nullptr, false);
}

// FSYNC_OBJECT requests the S-workers have served (their Prometheus counters); -1 if unreadable.
int64_t FsyncsServed() {
  json cfg = json::parse(ReadFileStr(cluster->dir() + "/cluster.json"), nullptr, false);
  if (!cfg.is_object() || !cfg["worker_metrics_ports"].is_array()) return -1;
  const std::string key = "cfs_storage_ops_total{method=\"FSYNC_OBJECT\"} ";
  int64_t total = 0;
  for (const auto& port : cfg["worker_metrics_ports"]) {
    std::string out;
    if (Sh("curl -sf http://127.0.0.1:" + std::to_string(port.get<int>()) + "/metrics", &out) != 0) return -1;
    size_t at = out.find(key);
    if (at != std::string::npos) total += std::atoll(out.c_str() + at + key.size());
  }
  return total;
}

TEST_F(CkptTest, CliThroughTheMountAndTheCluster) {
  std::string out;
  ASSERT_EQ(CkptOut("begin --mount " + M() + " cli/step-1", &out), 0) << out;
  const std::string dir = Trim(out);
  EXPECT_EQ(dir, M() + "/cli/.pending/step-1");
  // Another rank joining the set gets the same directory.
  ASSERT_EQ(CkptOut("begin --mount " + M() + " cli/step-1", &out), 0) << out;
  EXPECT_EQ(Trim(out), dir);
  ASSERT_EQ(CkptOut("begin" + Cl() + " /cli/step-1", &out), 0) << out;
  EXPECT_EQ(Trim(out), "/cli/.pending/step-1");

  std::vector<TestFile> files = {{"rank-0", (3 << 20) + 12345, 11},
                                 {"rank-1", 1, 12},
                                 {"empty", 0, 13},
                                 {"sub/deep/rank-2", (9 << 20) + 1, 14}};
  ASSERT_EQ(mkdir((dir + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir + "/sub/deep").c_str(), 0755), 0);
  uint64_t total = 0;
  for (const auto& f : files) {
    ASSERT_TRUE(WritePatternFile(dir + "/" + f.path, f.size, f.seed, 777777)) << f.path;
    total += f.size;
  }

  // Pending: not the latest, no path, listed as pending with its files.
  EXPECT_EQ(Ckpt("latest --mount " + M() + " cli", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "no committed checkpoint set")) << out;
  EXPECT_EQ(Ckpt("path --mount " + M() + " cli/step-1", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "pending")) << out;
  ASSERT_EQ(CkptOut("list --json --mount " + M() + " cli", &out), 0) << out;
  json l = json::parse(out, nullptr, false);
  ASSERT_TRUE(l.is_array() && l.size() == 1) << out;
  EXPECT_EQ(l[0]["name"], "step-1");
  EXPECT_EQ(l[0]["state"], "pending");
  EXPECT_EQ(l[0]["files"], 4);
  EXPECT_EQ(l[0]["bytes"], total);
  EXPECT_EQ(l[0]["path"], dir);

  // The writers (the mount) never fsynced: the commit must, on every target
  // of every file (4+2 on 6 S-workers: 6 each) and of the manifest.
  const int64_t fsyncs = FsyncsServed();
  ASSERT_GE(fsyncs, 0) << "S-worker metrics unreadable";
  ASSERT_EQ(Ckpt("commit --mount " + M() + " cli/step-1", &out), 0) << out;
  EXPECT_TRUE(Contains(out, "committed cli/step-1: seq 1, 4 files")) << out;
  EXPECT_GE(FsyncsServed() - fsyncs, (4 + 1) * 6);

  ASSERT_EQ(CkptOut("latest --mount " + M() + " cli", &out), 0) << out;
  EXPECT_EQ(Trim(out), "step-1");
  ASSERT_EQ(CkptOut("path --mount " + M() + " cli/step-1", &out), 0) << out;
  const std::string committed = Trim(out);
  EXPECT_EQ(committed, M() + "/cli/step-1");
  ASSERT_EQ(CkptOut("path" + Cl() + " cli/step-1", &out), 0) << out;
  EXPECT_EQ(Trim(out), "/cli/step-1");
  struct cfs_stat cst;
  EXPECT_EQ(cfs_stat(ctx_, "/cli/.pending/step-1", &cst), -ENOENT) << "the pending directory is still there";

  // Content, through the mount (from CFS, not the page cache) and through libcfs.
  ASSERT_EQ(DropCaches(), "");
  for (const auto& f : files) {
    EXPECT_EQ(CheckPatternFile(committed + "/" + f.path, f.size, f.seed), "") << f.path;
    EXPECT_EQ(ApiCheck(ctx_, "/cli/step-1/" + f.path, f.size, f.seed), "") << f.path;
  }
  json man = Manifest(committed);
  ASSERT_TRUE(man.is_object()) << "no manifest";
  EXPECT_EQ(man["name"], "step-1");
  EXPECT_EQ(man["seq"], 1);
  EXPECT_EQ(man["file_count"], 4);
  EXPECT_EQ(man["bytes"], total);
  std::map<std::string, uint64_t> listed;
  for (const auto& f : man["files"]) listed[f["path"].get<std::string>()] = f["size"].get<uint64_t>();
  std::map<std::string, uint64_t> want;
  for (const auto& f : files) want[f.path] = f.size;
  EXPECT_EQ(listed, want);

  ASSERT_EQ(CkptOut("latest --json" + Cl() + " cli", &out), 0) << out;
  json lj = json::parse(out, nullptr, false);
  EXPECT_EQ(lj["name"], "step-1");
  EXPECT_EQ(lj["seq"], 1);
  EXPECT_EQ(lj["files"], 4);
  EXPECT_EQ(lj["path"], "/cli/step-1");
  ASSERT_EQ(Ckpt("list --mount " + M() + " cli", &out), 0) << out;
  EXPECT_TRUE(Contains(out, "step-1") && Contains(out, "committed")) << out;

  // Retention from the CLI, and a second commit with --keep.
  ASSERT_EQ(CkptOut("retention --mount " + M() + " cli", &out), 0) << out;
  EXPECT_TRUE(Contains(out, "keep all")) << out;
  ASSERT_EQ(CkptOut("begin --mount " + M() + " cli/step-2", &out), 0) << out;
  ASSERT_TRUE(WritePatternFile(Trim(out) + "/rank-0", 5000, 21));
  ASSERT_EQ(Ckpt("commit --keep 1 --mount " + M() + " cli/step-2", &out), 0) << out;
  EXPECT_TRUE(Contains(out, "removed step-1 (retention: keep 1)")) << out;
  ASSERT_EQ(CkptOut("retention --json --mount " + M() + " cli", &out), 0) << out;
  EXPECT_EQ(json::parse(out, nullptr, false)["keep"], 1);
  EXPECT_EQ(cfs_stat(ctx_, "/cli/step-1", &cst), -ENOENT) << "step-1 survived keep=1";
  EXPECT_EQ(CheckPatternFile(M() + "/cli/step-2/rank-0", 5000, 21), "");
  ASSERT_EQ(CkptOut("remove --mount " + M() + " cli/step-2", &out), 0) << out;
  EXPECT_EQ(Ckpt("latest --mount " + M() + " cli", &out), 1) << out;
}

TEST_F(CkptTest, NToNAndNToOneFromEightContexts) {
  constexpr int kRanks = 8;
  constexpr uint64_t kSlice = 4 << 20;  // one 4+2 stripe of 1 MiB units: ranks never share a stripe
  auto rank_size = [](int r) { return (uint64_t(r) + 1) * (1 << 20) + 777 * r; };
  std::atomic<int> failures{0};
  std::vector<std::string> dirs(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; r++) {
    threads.emplace_back([&, r] {
      cfs_ctx* c = nullptr;
      if (cfs_mount(cluster->MetaAddr().c_str(), nullptr, &c) != 0) {
        failures++;
        return;
      }
      char dir[512];
      if (cfs_ckpt_begin(c, "api/nn/step-000001", dir, sizeof dir) != 0) failures++;
      dirs[r] = dir;
      ApiWrite(c, dirs[r] + "/rank-" + std::to_string(r), rank_size(r), 100 + r);
      ApiWrite(c, dirs[r] + "/shared", kSlice, 999, O_CREAT | O_WRONLY, r * kSlice);
      if (cfs_unmount(c) != 0) failures++;
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_FALSE(HasFatalFailure());
  for (const auto& d : dirs) EXPECT_EQ(d, "/api/nn/.pending/step-000001");

  ASSERT_EQ(cfs_ckpt_commit(ctx_, "api/nn/step-000001"), 0);
  char path[256];
  ASSERT_EQ(cfs_ckpt_path(ctx_, "/api/nn/step-000001", path, sizeof path), 0);
  EXPECT_STREQ(path, "/api/nn/step-000001");
  EXPECT_EQ(cfs_ckpt_path(ctx_, "/api/nn/step-000001", path, 5), -ERANGE);
  EXPECT_EQ(Latest("api/nn"), "step-000001");

  uint64_t total = 0;
  ASSERT_EQ(DropCaches(), "");
  for (int r = 0; r < kRanks; r++) {
    EXPECT_EQ(ApiCheck(ctx_, std::string(path) + "/rank-" + std::to_string(r), rank_size(r), 100 + r), "");
    EXPECT_EQ(CheckPatternFile(M() + "/api/nn/step-000001/rank-" + std::to_string(r), rank_size(r), 100 + r), "");
    total += rank_size(r);
  }
  EXPECT_EQ(ApiCheck(ctx_, std::string(path) + "/shared", kRanks * kSlice, 999), "");
  EXPECT_EQ(CheckPatternFile(M() + "/api/nn/step-000001/shared", kRanks * kSlice, 999), "");
  total += kRanks * kSlice;
  auto l = List("api/nn");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_STREQ(l[0].name, "step-000001");
  EXPECT_EQ(l[0].state, uint32_t{CFS_CKPT_COMMITTED});
  EXPECT_EQ(l[0].seq, 1u);
  EXPECT_EQ(l[0].files, uint64_t{kRanks + 1});
  EXPECT_EQ(l[0].bytes, total);
  EXPECT_GT(l[0].commit_ns, 0);
}

TEST_F(CkptTest, CommitRefusesFilesThisContextStillWrites) {
  std::string dir = Begin("api/busy/s1");
  int fh = cfs_open(ctx_, (dir + "/f").c_str(), O_CREAT | O_WRONLY, 0644, nullptr);
  ASSERT_GE(fh, 0);
  std::string data(100, 'x');
  ASSERT_EQ(cfs_pwrite(ctx_, fh, data.data(), data.size(), 0), 100);
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/busy/s1"), -CFS_ECKPTBUSY);
  int rc;
  EXPECT_EQ(Latest("api/busy", &rc), "");
  EXPECT_EQ(rc, -ENOENT);
  ASSERT_EQ(cfs_close(ctx_, fh), 0);
  // A reader does not hold the commit back.
  int rd = cfs_open(ctx_, (dir + "/f").c_str(), O_RDONLY, 0, nullptr);
  ASSERT_GE(rd, 0);
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/busy/s1"), 0);
  ASSERT_EQ(cfs_close(ctx_, rd), 0);
  EXPECT_EQ(ReadFileStr(M() + "/api/busy/s1/f"), data);
  auto l = List("api/busy");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].bytes, 100u);
}

TEST_F(CkptTest, CommittedNamesAreFinal) {
  std::string dir = Begin("api/twice/s1");
  ASSERT_TRUE(WriteFileStr(M() + "/api/twice/.pending/s1/a", "first"));
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/twice/s1"), 0);
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/twice/s1"), -CFS_ECOMMITTED);
  char buf[256];
  EXPECT_EQ(cfs_ckpt_begin(ctx_, "api/twice/s1", buf, sizeof buf), -CFS_ECOMMITTED);
  std::string out;
  EXPECT_EQ(Ckpt("commit" + Cl() + " api/twice/s1", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "api/twice/s1 is already committed") && Contains(out, "ECOMMITTED")) << out;
  EXPECT_EQ(Ckpt("begin --mount " + M() + " api/twice/s1", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "ECOMMITTED")) << out;
  struct cfs_stat st;
  EXPECT_EQ(cfs_stat(ctx_, "/api/twice/.pending/s1", &st), -ENOENT) << "begin recreated the pending set";
  EXPECT_EQ(ReadFileStr(M() + "/api/twice/s1/a"), "first");
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/twice/never-begun"), -ENOENT);
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/no-such-job/s1"), -ENOENT);

  // Several processes committing one set at once: one wins, the others are told.
  Begin("api/twice/s2");
  for (int i = 0; i < 6; i++)
    ASSERT_TRUE(WritePatternFile(M() + "/api/twice/.pending/s2/f" + std::to_string(i), 300000, 40 + i));
  std::vector<int> rcs(6);
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; i++)
    threads.emplace_back([&, i] {
      cfs_ctx* c = nullptr;
      rcs[i] = cfs_mount(cluster->MetaAddr().c_str(), nullptr, &c);
      if (rcs[i] == 0) {
        rcs[i] = cfs_ckpt_commit(c, "api/twice/s2");
        cfs_unmount(c);
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::count(rcs.begin(), rcs.end(), 0), 1) << ::testing::PrintToString(rcs);
  EXPECT_EQ(std::count(rcs.begin(), rcs.end(), -CFS_ECOMMITTED), 5) << ::testing::PrintToString(rcs);
  EXPECT_EQ(Latest("api/twice"), "s2");
  for (int i = 0; i < 6; i++)
    EXPECT_EQ(CheckPatternFile(M() + "/api/twice/s2/f" + std::to_string(i), 300000, 40 + i), "");
  json man = Manifest(M() + "/api/twice/s2");
  EXPECT_EQ(man["file_count"], 6);
  EXPECT_EQ(man["seq"], 2);
  // Only the manifest is hidden in the set: no temporary left by the losers.
  auto names = ListDir(M() + "/api/twice/s2");
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            (std::set<std::string>{".cfs-ckpt", "f0", "f1", "f2", "f3", "f4", "f5"}));
}

TEST_F(CkptTest, BadNamesAndBadArguments) {
  char buf[256];
  for (const std::string& bad : std::vector<std::string>{"", "nojob", "/step", "job/", "job/.hidden", "job/.pending", "../x/n",
                                "a/./n", "a/../n", "a/.pending/n", "j/" + std::string(256, 'n')}) {
    EXPECT_EQ(cfs_ckpt_begin(ctx_, bad.c_str(), buf, sizeof buf), -EINVAL) << bad;
    EXPECT_EQ(cfs_ckpt_commit(ctx_, bad.c_str()), -EINVAL) << bad;
    EXPECT_EQ(cfs_ckpt_path(ctx_, bad.c_str(), buf, sizeof buf), -EINVAL) << bad;
    EXPECT_EQ(cfs_ckpt_remove(ctx_, bad.c_str()), -EINVAL) << bad;
  }
  for (const std::string bad : {"", "/", "a/..", "x/.pending"}) {
    EXPECT_EQ(cfs_ckpt_latest(ctx_, bad.c_str(), buf, sizeof buf), -EINVAL) << bad;
    EXPECT_EQ(cfs_ckpt_list(ctx_, bad.c_str(), nullptr, 0), -EINVAL) << bad;
    EXPECT_EQ(cfs_ckpt_set_retention(ctx_, bad.c_str(), 1), -EINVAL) << bad;
  }
  EXPECT_EQ(cfs_ckpt_begin(nullptr, "j/n", buf, sizeof buf), -EINVAL);
  EXPECT_EQ(cfs_ckpt_begin(ctx_, "j/n", nullptr, 10), -EINVAL);
  EXPECT_EQ(cfs_ckpt_list(ctx_, "j", nullptr, 5), -EINVAL);
  EXPECT_EQ(cfs_ckpt_list(ctx_, "j", nullptr, -1), -EINVAL);
  // Too small for "/bad/.pending/n": refused before anything is created.
  EXPECT_EQ(cfs_ckpt_begin(ctx_, "bad/n", buf, 10), -ERANGE);
  struct cfs_stat st;
  EXPECT_EQ(cfs_stat(ctx_, "/bad", &st), -ENOENT);
  // Nothing there.
  EXPECT_EQ(cfs_ckpt_latest(ctx_, "no/such/job", buf, sizeof buf), -ENOENT);
  EXPECT_EQ(cfs_ckpt_list(ctx_, "no/such/job", nullptr, 0), -ENOENT);
  EXPECT_EQ(cfs_ckpt_get_retention(ctx_, "no/such/job"), -ENOENT);
  EXPECT_EQ(cfs_ckpt_remove(ctx_, "no/such/job"), -ENOENT);
  // A file where the job should be.
  ASSERT_TRUE(WriteFileStr(M() + "/plainfile", "x"));
  EXPECT_EQ(cfs_ckpt_begin(ctx_, "plainfile/n", buf, sizeof buf), -ENOTDIR);
  // A directory in the job that is not a set is neither listed nor removed.
  Begin("api/bad/s1");
  ASSERT_EQ(mkdir((M() + "/api/bad/notaset").c_str(), 0755), 0);
  EXPECT_EQ(cfs_ckpt_begin(ctx_, "api/bad/notaset", buf, sizeof buf), -EEXIST);
  EXPECT_EQ(cfs_ckpt_remove(ctx_, "api/bad/notaset"), -ENOENT);
  EXPECT_EQ(List("api/bad").size(), 1u);
  // The CLI says what is wrong and exits 1 (2 for a bad command line).
  std::string out;
  EXPECT_EQ(Ckpt("begin" + Cl() + " job/.hidden", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "may not start with '.'") && Contains(out, "EINVAL")) << out;
  EXPECT_EQ(Ckpt("latest" + Cl() + " no/such/job", &out), 1) << out;
  EXPECT_TRUE(Contains(out, "ENOENT")) << out;
  EXPECT_EQ(Ckpt("retention" + Cl() + " api/bad -3", &out), 2) << out;
  EXPECT_EQ(Ckpt("frobnicate" + Cl() + " api/bad", &out), 2) << out;
  EXPECT_EQ(Ckpt("begin --mount /proc job/n", &out), 2) << out;
}

TEST_F(CkptTest, RetentionKeepsTheNewestTwoOverFourCommits) {
  EXPECT_EQ(cfs_ckpt_set_retention(ctx_, "api/keep", 2), 0);
  EXPECT_EQ(cfs_ckpt_get_retention(ctx_, "api/keep"), 2);
  for (int i = 1; i <= 4; i++) {
    std::string name = "s" + std::to_string(i);
    std::string dir = Begin("api/keep/" + name);
    ApiWrite(ctx_, dir + "/data", 200000 + i, 500 + i);
    ASSERT_EQ(cfs_ckpt_commit(ctx_, ("api/keep/" + name).c_str()), 0) << name;
    auto l = List("api/keep");
    ASSERT_EQ(l.size(), std::min<size_t>(i, 2)) << "after " << name;
    for (size_t k = 0; k < l.size(); k++) {
      int want = i - static_cast<int>(l.size()) + 1 + static_cast<int>(k);
      EXPECT_EQ(std::string(l[k].name), "s" + std::to_string(want));
      EXPECT_EQ(l[k].seq, uint64_t(want));
      EXPECT_EQ(ApiCheck(ctx_, "/api/keep/s" + std::to_string(want) + "/data", 200000 + want, 500 + want), "");
    }
    EXPECT_EQ(Latest("api/keep"), name);
  }
  struct cfs_stat st;
  for (int i = 1; i <= 2; i++)
    EXPECT_EQ(cfs_stat(ctx_, ("/api/keep/s" + std::to_string(i)).c_str(), &st), -ENOENT) << i;
  // Nothing left over from the removals.
  EXPECT_EQ(ListDir(M() + "/api/keep/.pending"), std::vector<std::string>{});
  EXPECT_EQ(cfs_ckpt_set_retention(ctx_, "api/keep", 0), 0);
  EXPECT_EQ(cfs_ckpt_get_retention(ctx_, "api/keep"), 0);
}

TEST_F(CkptTest, PendingSetsAreInvisibleAndRemovable) {
  std::string d1 = Begin("api/rm/a");
  ApiWrite(ctx_, d1 + "/x", 123456, 61);
  ASSERT_EQ(cfs_ckpt_commit(ctx_, "api/rm/a"), 0);
  std::string d2 = Begin("api/rm/b");
  ApiWrite(ctx_, d2 + "/x", 654321, 62);
  ASSERT_EQ(cfs_ckpt_commit(ctx_, "api/rm/b"), 0);
  std::string d3 = Begin("api/rm/c");
  ApiWrite(ctx_, d3 + "/x", 1000, 63);
  ApiWrite(ctx_, d3 + "/y", 2000, 64);
  // c is pending: b is the latest, c has no path, and is listed last as pending.
  EXPECT_EQ(Latest("api/rm"), "b");
  char buf[256];
  EXPECT_EQ(cfs_ckpt_path(ctx_, "api/rm/c", buf, sizeof buf), -ENOENT);
  auto l = List("api/rm");
  ASSERT_EQ(l.size(), 3u);
  EXPECT_STREQ(l[2].name, "c");
  EXPECT_EQ(l[2].state, uint32_t{CFS_CKPT_PENDING});
  EXPECT_EQ(l[2].seq, 0u);
  EXPECT_EQ(l[2].files, 2u);
  EXPECT_EQ(l[2].bytes, 3000u);
  // cfs_ckpt_list says how many there are when given less room.
  cfs_ckpt_info one;
  EXPECT_EQ(cfs_ckpt_list(ctx_, "api/rm", &one, 1), 3);
  EXPECT_STREQ(one.name, "a");

  // Removing the latest falls back to the one before; removing pending drops it.
  EXPECT_EQ(cfs_ckpt_remove(ctx_, "api/rm/b"), 0);
  EXPECT_EQ(Latest("api/rm"), "a");
  EXPECT_EQ(cfs_ckpt_remove(ctx_, "api/rm/b"), -ENOENT);
  EXPECT_EQ(cfs_ckpt_remove(ctx_, "api/rm/c"), 0);
  l = List("api/rm");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_STREQ(l[0].name, "a");
  EXPECT_EQ(ApiCheck(ctx_, "/api/rm/a/x", 123456, 61), "");
  std::string out;
  ASSERT_EQ(CkptOut("remove --mount " + M() + " api/rm/a", &out), 0) << out;
  EXPECT_EQ(Trim(out), "removed api/rm/a");
  int rc;
  Latest("api/rm", &rc);
  EXPECT_EQ(rc, -ENOENT);
  EXPECT_EQ(ListDir(M() + "/api/rm"), std::vector<std::string>{".pending"});
  EXPECT_EQ(ListDir(M() + "/api/rm/.pending"), std::vector<std::string>{});
  // A removed name can be used again.
  std::string d4 = Begin("api/rm/b");
  ApiWrite(ctx_, d4 + "/x", 10, 65);
  EXPECT_EQ(cfs_ckpt_commit(ctx_, "api/rm/b"), 0);
  EXPECT_EQ(Latest("api/rm"), "b");
}

// Files of round r of the crash test: name -> (size, seed).
std::map<std::string, std::pair<uint64_t, uint64_t>> CrashFiles(int round) {
  std::map<std::string, std::pair<uint64_t, uint64_t>> m;
  for (int j = 0; j < 16; j++) {
    char name[32];
    std::snprintf(name, sizeof name, "rank-%02d", j);
    m[name] = {(1 << 20) + uint64_t(j) * 4097 + round, uint64_t(round) * 100 + j + 1};
  }
  return m;
}

int RoundOf(const std::string& name) { return std::atoi(name.c_str() + 5); }  // "step-NNN"

// "" if the committed set at dir (local) is complete: manifest, every file, every byte.
std::string VerifySet(const std::string& dir, const std::string& name) {
  json man = Manifest(dir);
  if (!man.is_object()) return name + ": no readable manifest";
  auto want = CrashFiles(RoundOf(name));
  std::map<std::string, std::pair<uint64_t, uint64_t>> got;
  for (const auto& f : man["files"]) {
    std::string p = f["path"].get<std::string>();
    got[p] = {f["size"].get<uint64_t>(), want.count(p) ? want[p].second : 0};
  }
  if (got != want) return name + ": the manifest does not list the complete set";
  for (const auto& [p, sz] : want) {
    std::string e = CheckPatternFile(dir + "/" + p, sz.first, sz.second);
    if (!e.empty()) return name + ": " + e;
  }
  return "";
}

// Steps of client/checkpoint.cc where CFS_CKPT_CRASH_AT kills the committer,
// and whether the set is committed then.
const std::vector<std::pair<std::string, bool>> kCrashSteps = {
    {"synced", false},        {"manifest-tmp", false},   {"manifest", false},
    {"renamed", true},        {"remove-renamed", true},  {"remove-partial", true}};

TEST_F(CkptTest, KilledCommitsNeverLeaveAnIncompleteSet) {
  // Round 0 runs whole and measures a commit; rounds 1..6 crash at each step
  // above; the rest are killed after a random delay; the last runs whole.
  const int kSteps = static_cast<int>(kCrashSteps.size());
  const int kRounds = kSteps + 24;
  const std::string job = "crash";
  std::string out;
  ASSERT_EQ(CkptOut("retention --mount " + M() + " " + job + " 2", &out), 0) << out;
  std::mt19937 rng(std::random_device{}());
  double full_ms = 0;
  int pending_after = 0, committed_after = 0, finished = 0, trash_seen = 0;
  std::string prev;  // the latest committed set
  std::set<std::string> ever;
  for (int round = 0; round <= kRounds; round++) {
    char name[32];
    std::snprintf(name, sizeof name, "step-%03d", round);
    ASSERT_EQ(CkptOut("begin --mount " + M() + " " + job + "/" + name, &out), 0) << out;
    const std::string dir = Trim(out);
    for (const auto& [p, f] : CrashFiles(round)) ASSERT_TRUE(WritePatternFile(dir + "/" + p, f.first, f.second)) << p;

    // Random kills: odd rounds anywhere in the commit, even ones in its second
    // half, where the manifest, the rename and the retention are.
    const bool stepped = round >= 1 && round <= kSteps;
    const std::string step = stepped ? kCrashSteps[round - 1].first : "";
    const int delay_us = round == 0 || round == kRounds || stepped ? -1
                         : round % 2 ? std::uniform_int_distribution<int>(0, int(full_ms * 1200))(rng)
                                     : std::uniform_int_distribution<int>(int(full_ms * 500), int(full_ms * 1100))(rng);
    auto t0 = std::chrono::steady_clock::now();
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      std::string bin = Bin("cfs"), set = job + "/" + name, mnt = M();
      if (stepped) setenv("CFS_CKPT_CRASH_AT", step.c_str(), 1);
      execl(bin.c_str(), "cfs", "ckpt", "commit", "--mount", mnt.c_str(), set.c_str(), nullptr);
      _exit(127);
    }
    int status = 0;
    if (delay_us >= 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      kill(pid, SIGKILL);
    }
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const bool killed = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    if (stepped) {
      ASSERT_TRUE(killed) << "no crash at step " << step << ", status " << status;
    } else if (delay_us < 0) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "commit failed, status " << status;
      if (round == 0) full_ms = ms;
    } else if (!killed) {
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "commit failed, status " << status;
      finished++;
      full_ms = std::min(full_ms, ms);  // round 0 was slow (a busy machine): aim earlier
    }

    // Whatever is reported now is either the old or the new set, and complete.
    int rc = CkptOut("latest --mount " + M() + " " + job, &out);
    std::string latest = rc == 0 ? Trim(out) : "";
    if (stepped) {
      ASSERT_EQ(latest, kCrashSteps[round - 1].second ? name : prev) << "crash at step " << step;
    } else if (delay_us < 0 || !killed) {
      ASSERT_EQ(latest, name);
    } else {
      ASSERT_TRUE(latest == name || latest == prev) << "round " << round << ": latest is '" << latest
                                                    << "', expected " << name << " or '" << prev << "'";
      (latest == name ? committed_after : pending_after)++;
    }
    ASSERT_EQ(VerifySet(M() + "/" + job + "/" + latest, latest), "") << "round " << round;
    // Every set listed as committed is complete too (a killed retention included).
    ASSERT_EQ(CkptOut("list --json --mount " + M() + " " + job, &out), 0) << out;
    json l = json::parse(out, nullptr, false);
    ASSERT_TRUE(l.is_array()) << out;
    for (const auto& e : l) {
      std::string n = e["name"].get<std::string>();
      if (e["state"] == "committed") {
        ASSERT_TRUE(ever.count(n) || n == name) << n << " committed out of nowhere";
        ASSERT_EQ(VerifySet(M() + "/" + job + "/" + n, n), "") << "round " << round;
      } else {
        ASSERT_EQ(n, name) << "a pending set other than this round's";
      }
    }
    int trash = 0;
    for (const auto& n : ListDir(M() + "/" + job + "/.pending")) trash += n.rfind(".trash-", 0) == 0;
    // A removal killed half way leaves its set in .pending/.trash-*, out of every listing.
    if (stepped && step.rfind("remove-", 0) == 0) {
      ASSERT_EQ(trash, 1) << "crash at step " << step;
    }
    if (!stepped) trash_seen += trash;
    if (latest != name) {
      // Killed before the commit point: the set is still pending, whole; commit it now.
      struct stat st;
      ASSERT_NE(stat((M() + "/" + job + "/" + name).c_str(), &st), 0);
      ASSERT_EQ(Ckpt("commit --mount " + M() + " " + job + "/" + name, &out), 0) << out;
      ASSERT_EQ(CkptOut("latest --mount " + M() + " " + job, &out), 0) << out;
      ASSERT_EQ(Trim(out), name);
      ASSERT_EQ(VerifySet(M() + "/" + job + "/" + name, name), "");
    }
    ever.insert(name);
    prev = name;
  }
  std::printf("[ killed commits ] %d crashes at fixed steps; full commit %.0f ms; of %d random kills: %d before "
              "the commit point, %d after it, %d too late (finished), %d left a half-removed old set\n",
              kSteps, full_ms, kRounds - kSteps - 1, pending_after, committed_after, finished, trash_seen);
  // The retention caught up with everything a killed commit left.
  ASSERT_EQ(CkptOut("list --json --mount " + M() + " " + job, &out), 0) << out;
  json l = json::parse(out, nullptr, false);
  ASSERT_EQ(l.size(), 2u) << out;
  auto pend = ListDir(M() + "/" + job + "/.pending");
  EXPECT_TRUE(pend.empty()) << "left in .pending: " << pend.size() << " entries, first " << pend[0];
  // The random kills did hit running commits, or they proved nothing.
  EXPECT_GT(pending_after + committed_after, 0);
}

}  // namespace
}  // namespace cfs::test
