// Rebuild onto a replacement: on a 6-worker 4+2 cluster one S-worker is
// killed and its target directory wiped; restarted, it registers a fresh
// target. `cfs rebuild --target OLD` retires the old target, every layout that
// named it names another target, the rebuild reaches "idle", and afterwards the
// loss of two *other* S-workers still leaves every byte readable.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct Spec {
  std::string name;
  uint64_t size;
  uint64_t seed;
};

std::vector<Spec> Files() {
  const uint64_t sizes[] = {1,        65537,        kMiB + 3,          4 * kMiB - 1, 4 * kMiB,
                            4 * kMiB + 1, 13 * kMiB + 777, 24 * kMiB, 37 * kMiB + 12345};
  std::vector<Spec> v;
  for (size_t i = 0; i < std::size(sizes); i++) v.push_back({"r" + std::to_string(i), sizes[i], 300 + i});
  return v;
}

std::string CheckAll(const LocalCluster& c, const std::vector<Spec>& files) {
  std::string e = DropCaches();
  for (const auto& f : files)
    if (e.empty()) e = CheckPatternFile(c.Path(f.name), f.size, f.seed);
  return e;
}

// Polls `cfs status --json` until target id is listed down (bounded: a hang guard).
bool WaitTargetDown(const LocalCluster& c, uint32_t id) {
  for (int i = 0; i < 240; i++) {
    std::string o;
    if (c.Cfs("status --json", &o) == 0) {
      auto j = nlohmann::json::parse(o.substr(std::min(o.find('{'), o.size())), nullptr, false);
      if (!j.is_discarded() && j.contains("targets"))
        for (const auto& d : j["targets"]["down_ids"])
          if (d.get<uint32_t>() == id) return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return false;
}

TEST(EcRebuildTest, WipedWorkerIsRebuiltThenTwoOthersCanBeLost) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  auto files = Files();
  for (const auto& f : files) ASSERT_TRUE(WritePatternFileSynced(c.Path(f.name), f.size, f.seed)) << f.name;
  ASSERT_EQ(CheckAll(c, files), "");

  const int victim = 2;
  auto workers = TargetWorkers(c);
  uint32_t old_target = UINT32_MAX;
  for (auto [t, w] : workers)
    if (w == victim) old_target = t;
  ASSERT_NE(old_target, UINT32_MAX) << "no target of worker " << victim << " in cfs df --json";
  std::string target_dir = c.dir() + "/storage-" + std::to_string(victim) + "/t0";
  ASSERT_EQ(TargetPaths(c)[old_target], target_dir) << "the launcher's layout changed";

  ASSERT_TRUE(KillWorker(c, victim)) << "worker " << victim;
  ASSERT_TRUE(WaitTargetDown(c, old_target)) << "the M-worker never listed target " << old_target << " down";
  ASSERT_EQ(cfs::test::Run("rm -rf '" + target_dir + "'/* '" + target_dir + "'/.[!.]*"), 0);
  ASSERT_EQ(c.StartWorker(victim), "");
  auto after = TargetWorkers(c);
  uint32_t new_target = UINT32_MAX;
  for (auto [t, w] : after)
    if (w == victim && t != old_target) new_target = t;
  ASSERT_NE(new_target, UINT32_MAX) << "the wiped target did not register as a new one";

  std::string out;
  ASSERT_EQ(c.Cfs("rebuild --target " + std::to_string(old_target), &out), 0) << out;
  ASSERT_EQ(WaitRebuildIdle(c), "");
  for (const auto& f : files) {
    FileLayout l;
    ASSERT_EQ(GetFileLayout(c, c.Path(f.name), &l), "");
    EXPECT_EQ(std::count(l.targets.begin(), l.targets.end(), old_target), 0)
        << f.name << " still lists the retired target " << old_target;
  }
  ASSERT_EQ(CheckAll(c, files), "") << "after the rebuild, all workers up";

  // Two others down: the rebuilt units on the new target are needed now.
  ASSERT_TRUE(KillWorker(c, 0)) << "worker " << 0;
  ASSERT_TRUE(KillWorker(c, 4)) << "worker " << 4;
  EXPECT_EQ(CheckAll(c, files), "") << "workers 0 and 4 down after the rebuild";
}

}  // namespace
}  // namespace cfs::test
