// Degraded reads on a 6-worker 4+2 cluster: 512 MiB of pseudo-random data
// written and fsynced through the mount read back byte-exact after kill -9 of
// two S-workers (and dropped kernel caches); then again with the two workers
// that hold data units 0 and 1 of the first stripe of the first file down.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr int kFiles = 4;
constexpr uint64_t kFileSize = 128 * kMiB;

std::string CheckAll(const LocalCluster& c) {
  std::string err = DropCaches();
  if (!err.empty()) return err;
  for (int f = 0; f < kFiles; f++) {
    err = CheckPatternFile(c.Path("f" + std::to_string(f)), kFileSize, 7000 + f, 4 * kMiB);
    if (!err.empty()) return err;
  }
  return "";
}

TEST(EcDegradedReadTest, TwoWorkersDownReadsEverythingBack) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  for (int f = 0; f < kFiles; f++)
    ASSERT_TRUE(WritePatternFileSynced(c.Path("f" + std::to_string(f)), kFileSize, 7000 + f, 4 * kMiB)) << f;
  FileLayout l;
  ASSERT_EQ(GetFileLayout(c, c.Path("f0"), &l), "");
  ASSERT_EQ(l.k, 4u);
  ASSERT_EQ(l.m, 2u);
  ASSERT_EQ(l.targets.size(), 6u);
  auto workers = TargetWorkers(c);
  ASSERT_EQ(workers.size(), 6u);
  ASSERT_EQ(CheckAll(c), "") << "healthy";

  // Data units 0 and 1 of stripe 0 of f0 (unit j of stripe 0 is on targets[j]).
  std::vector<int> first_data = {workers[l.targets[0]], workers[l.targets[1]]};
  // Phase 1: a data and a parity unit of stripe 0 (other roles in the other stripes).
  std::vector<int> phase1 = {workers[l.targets[2]], workers[l.targets[5]]};

  for (int w : phase1) ASSERT_TRUE(KillWorker(c, w)) << "worker " << w;
  EXPECT_EQ(CheckAll(c), "") << "workers " << phase1[0] << " and " << phase1[1] << " down";

  for (int w : phase1) ASSERT_EQ(c.StartWorker(w), "");
  ASSERT_EQ(WaitRebuildIdle(c), "");
  ASSERT_EQ(CheckAll(c), "") << "all workers back";

  for (int w : first_data) ASSERT_TRUE(KillWorker(c, w)) << "worker " << w;
  EXPECT_EQ(CheckAll(c), "") << "workers " << first_data[0] << " and " << first_data[1]
                             << " (data units 0 and 1 of the first stripe) down";
}

}  // namespace
}  // namespace cfs::test
