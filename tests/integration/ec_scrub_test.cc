// Bit rot on a 6-worker 4+2 cluster: bytes of a unit are flipped on disk (in
// the slot file that holds the unit's current version, while its S-worker
// runs). A read through the mount returns the right data. Units nobody reads
// (a parity unit and a data unit) are corrupted too; `cfs scrub` then reports
// checksum errors and repaired units, and afterwards every corrupted block on
// disk holds its original bytes again; the file still reads right with two
// other S-workers down.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kSize = 16 * kMiB;  // 4 stripes of 4 x 1 MiB
constexpr uint64_t kSeed = 4242;

struct Damage {
  int worker = -1;
  std::string slot_file;  // "<ino>" or "<ino>.1"
  uint64_t offset = 0;    // in the slot file
  std::string original;
};

// Flips 32 bytes at `within` of the unit of stripe s at layout index (s + j) % n.
std::string Corrupt(const LocalCluster& c, const FileLayout& l, uint64_t s, uint32_t j, uint64_t within,
                    Damage* d) {
  const uint32_t n = static_cast<uint32_t>(l.targets.size());
  uint32_t target = l.targets[(s + j) % n];
  auto paths = TargetPaths(c);
  auto workers = TargetWorkers(c);
  if (!paths.count(target)) return "target " + std::to_string(target) + " not in cfs df";
  d->worker = workers[target];
  std::string obj = ObjectPath(paths[target], l.ino);
  if (obj.empty()) return "no object of ino " + std::to_string(l.ino) + " under " + paths[target];
  // Version record of local unit s (n == k + m: local unit index == stripe).
  std::string rec = ReadFileStr(obj + ".ec");
  if (rec.size() < 64 * (s + 1)) return obj + ".ec: no record for unit " + std::to_string(s);
  int cur_slot = static_cast<unsigned char>(rec[64 * s + 4]);
  if (cur_slot > 1) return obj + ".ec: unit " + std::to_string(s) + " holds no slot (" + std::to_string(cur_slot) + ")";
  d->slot_file = cur_slot == 0 ? obj : obj + ".1";
  d->offset = s * l.unit + within;
  int fd = open(d->slot_file.c_str(), O_RDWR);
  if (fd < 0) return "open " + d->slot_file;
  d->original.assign(32, '\0');
  if (pread(fd, d->original.data(), 32, static_cast<off_t>(d->offset)) != 32) {
    close(fd);
    return "short read of " + d->slot_file;
  }
  std::string bad = d->original;
  for (char& ch : bad) ch = static_cast<char>(ch ^ 0x5a);
  bool ok = pwrite(fd, bad.data(), 32, static_cast<off_t>(d->offset)) == 32 && fsync(fd) == 0;
  close(fd);
  return ok ? "" : "write of " + d->slot_file + " failed";
}

std::string OnDisk(const Damage& d) {
  int fd = open(d.slot_file.c_str(), O_RDONLY);
  std::string b(32, '\0');
  if (fd < 0 || pread(fd, b.data(), 32, static_cast<off_t>(d.offset)) != 32) b.clear();
  if (fd >= 0) close(fd);
  return b;
}

TEST(EcScrubTest, CorruptUnitsAreReadRightAndRepaired) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  const std::string file = c.Path("victim");
  ASSERT_TRUE(WritePatternFileSynced(file, kSize, kSeed, 4 * kMiB));
  FileLayout l;
  ASSERT_EQ(GetFileLayout(c, file, &l), "");
  ASSERT_EQ(l.k, 4u);
  ASSERT_EQ(l.m, 2u);
  ASSERT_EQ(l.targets.size(), 6u);

  // 1. A data unit that is then read: stripe 0, data unit 1, in its 4th 64 KiB block.
  Damage read_one;
  ASSERT_EQ(Corrupt(c, l, 0, 1, 3 * 65536 + 1000, &read_one), "");
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(file, kSize, kSeed), "") << "read of a corrupted data unit";

  // 2. Units nobody reads before the scrub: parity unit 4 of stripe 2, data unit 3 of stripe 3.
  Damage parity, data;
  ASSERT_EQ(Corrupt(c, l, 2, 4, 5 * 65536 + 7, &parity), "");
  ASSERT_EQ(Corrupt(c, l, 3, 3, 100, &data), "");

  std::string out;
  int rc = RunWithTimeout(300, Bin("cfs") + " scrub --wait --cluster " + c.MetaAddr(), &out);
  EXPECT_EQ(rc, 0) << out;
  ASSERT_EQ(c.Cfs("scrub status --json", &out), 0) << out;
  auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << out;
  EXPECT_GE(j.value("checksum_errors", 0), 2) << out;
  EXPECT_GE(j.value("units_repaired", 0), 2) << out;
  EXPECT_EQ(j.value("unrepairable", 0), 0) << out;

  for (const Damage* d : {&read_one, &parity, &data})
    EXPECT_EQ(OnDisk(*d), d->original) << d->slot_file << " at " << d->offset << " not repaired on disk";

  // The repaired units are good redundancy: two workers that are not theirs go down.
  std::set<int> avoid = {parity.worker, data.worker};
  std::vector<int> kill;
  for (int w = 0; w < 6 && kill.size() < 2; w++)
    if (!avoid.count(w)) kill.push_back(w);
  for (int w : kill) ASSERT_TRUE(KillWorker(c, w)) << "worker " << w;
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(file, kSize, kSeed), "") << "workers " << kill[0] << ", " << kill[1] << " down";
}

}  // namespace
}  // namespace cfs::test
