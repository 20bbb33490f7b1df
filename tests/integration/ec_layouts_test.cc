// 3+1, 8+2 and 2+2 directories (unit 64 KiB) in one file system of 10
// S-workers (8+2 needs 10 targets). Files of sizes around the stripe and unit
// boundaries (full and partial stripes) are written in each, fsynced and read
// back; then, layout by layout, m S-workers holding units of that
// directory's files are killed and every file of the directory still reads
// byte-exact, before they are restarted for the next layout.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <set>
#include <string>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kKiB = 1024;

struct Dir {
  std::string name;
  uint32_t k, m;
};

std::vector<uint64_t> Sizes(uint32_t k) {
  const uint64_t stripe = k * 64 * kKiB;
  return {1, 4095, 64 * kKiB - 1, 64 * kKiB + 1, stripe - 1, stripe, stripe + 1, 3 * stripe + 12345,
          17 * stripe + 64 * kKiB + 3};
}

std::string FileName(const Dir& d, size_t i) { return d.name + "/f" + std::to_string(i); }
uint64_t Seed(const Dir& d, size_t i) { return d.k * 1000 + d.m * 100 + i; }

std::string CheckDir(const LocalCluster& c, const Dir& d) {
  std::string e = DropCaches();
  auto sizes = Sizes(d.k);
  for (size_t i = 0; i < sizes.size() && e.empty(); i++)
    e = CheckPatternFile(c.Path(FileName(d, i)), sizes[i], Seed(d, i), 100 * kKiB);
  return e;
}

TEST(EcLayoutsTest, ThreePlusOneEightPlusTwoTwoPlusTwo) {
  ClusterOptions o;
  o.workers = 10;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  const std::vector<Dir> dirs = {{"d31", 3, 1}, {"d82", 8, 2}, {"d22", 2, 2}};
  for (const auto& d : dirs) {
    ASSERT_EQ(mkdir(c.Path(d.name).c_str(), 0755), 0);
    std::string out;
    ASSERT_EQ(cfs::test::Run(Bin("cfs") + " setstripe --count " + std::to_string(d.k) + " --parity " + std::to_string(d.m) +
                      " --unit 64K '" + c.Path(d.name) + "'",
                  &out),
              0)
        << out;
    auto sizes = Sizes(d.k);
    for (size_t i = 0; i < sizes.size(); i++)
      ASSERT_TRUE(WritePatternFileSynced(c.Path(FileName(d, i)), sizes[i], Seed(d, i), 100 * kKiB))
          << FileName(d, i);
  }
  auto workers = TargetWorkers(c);
  ASSERT_EQ(workers.size(), 10u);
  for (const auto& d : dirs) {
    FileLayout l;
    ASSERT_EQ(GetFileLayout(c, c.Path(FileName(d, 0)), &l), "");
    EXPECT_EQ(l.k, d.k) << d.name;
    EXPECT_EQ(l.m, d.m) << d.name;
    EXPECT_EQ(l.unit, 64 * kKiB) << d.name;
    EXPECT_EQ(CheckDir(c, d), "") << d.name << " healthy";
  }

  for (const auto& d : dirs) {
    // m workers that hold units of this directory's biggest file (its first m layout entries).
    FileLayout l;
    ASSERT_EQ(GetFileLayout(c, c.Path(FileName(d, Sizes(d.k).size() - 1)), &l), "");
    ASSERT_GE(l.targets.size(), d.k + d.m);
    std::vector<int> down;
    for (uint32_t i = 0; i < d.m; i++) down.push_back(workers[l.targets[i]]);
    for (int w : down) ASSERT_TRUE(KillWorker(c, w)) << "worker " << w;
    std::string which;
    for (int w : down) which += " " + std::to_string(w);
    EXPECT_EQ(CheckDir(c, d), "") << d.name << " with workers" << which << " down";
    for (int w : down) ASSERT_EQ(c.StartWorker(w), "");
    ASSERT_EQ(WaitRebuildIdle(c), "");
  }
  // All three still read with everything back.
  for (const auto& d : dirs) EXPECT_EQ(CheckDir(c, d), "") << d.name << " at the end";
}

}  // namespace
}  // namespace cfs::test
