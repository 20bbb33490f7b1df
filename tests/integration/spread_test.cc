// One file's data spread over all 6 S-workers: a 64 MiB file written with the
// default 6+0 layout (1 MiB units) leaves, in each DIR/storage-I/t0, one object
// of the size the layout arithmetic says, holding exactly that target's units
// at their local offsets (checked byte for byte on disk); read-back through the
// mount is byte-exact.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/layout.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr int kWorkers = 6;

// The first JSON object (depth first) with "k" and "targets": the layout.
const nlohmann::json* FindLayout(const nlohmann::json& j) {
  if (j.is_object() && j.contains("k") && j.contains("targets")) return &j;
  if (j.is_structured())
    for (const auto& v : j)
      if (const auto* r = FindLayout(v)) return r;
  return nullptr;
}

std::string Basename(const std::string& p) { return p.substr(p.rfind('/') + 1); }

// The object for inode `ino` among a target's files: named by the inode
// number (hex or decimal, as docs/on-disk-format describes), not a sidecar.
std::vector<std::string> ObjectsOf(const std::string& target_dir, uint64_t ino) {
  char hex[32], HEX[32], dec[32];
  snprintf(hex, sizeof hex, "%016" PRIx64, ino);
  snprintf(HEX, sizeof HEX, "%016" PRIX64, ino);
  snprintf(dec, sizeof dec, "%" PRIu64, ino);
  std::vector<std::string> out;
  for (const auto& f : FilesUnder(target_dir)) {
    std::string b = Basename(f);
    if (b == hex || b == HEX || b == dec) out.push_back(f);
  }
  return out;
}

// Compares a target's object with what the layout puts there for a file that
// is FillPattern(seed) of `size` bytes, assuming the object is target index t.
bool ObjectMatches(const std::string& obj, const Layout& l, uint32_t t, uint64_t size, uint64_t seed,
                   std::string* why) {
  int fd = open(obj.c_str(), O_RDONLY);
  if (fd < 0) {
    *why = "open " + obj + ": " + strerror(errno);
    return false;
  }
  std::string got, want;
  for (const auto& e : MapRange(l, 0, size)) {
    if (e.target_index != t) continue;
    got.resize(e.length);
    want.resize(e.length);
    ssize_t r = pread(fd, got.data(), e.length, static_cast<off_t>(e.local_offset));
    FillPattern(want.data(), e.length, seed, e.file_offset);
    if (r != static_cast<ssize_t>(e.length) || got != want) {
      *why = obj + " as target index " + std::to_string(t) + ": file bytes at " +
             std::to_string(e.file_offset) + " not at local offset " + std::to_string(e.local_offset);
      close(fd);
      return false;
    }
  }
  close(fd);
  return true;
}

TEST(SpreadTest, SixtyFourMiBFileOnAllSixWorkers) {
  LocalCluster c;  // defaults: 6 workers, --stripe 6+0, --unit 1M
  ASSERT_EQ(c.Up(), "");
  const uint64_t size = 64 * kMiB;
  const uint64_t seed = 6464;
  const std::string path = c.Path("spread.bin");
  ASSERT_TRUE(WritePatternFile(path, size, seed));
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  ASSERT_EQ(static_cast<uint64_t>(st.st_size), size);
  const uint64_t ino = st.st_ino;

  // The layout the cluster should have given it.
  Layout l;
  l.unit = 1 << 20;
  l.k = 6;
  l.m = 0;
  for (uint32_t i = 0; i < kWorkers; i++) l.targets.push_back(i);
  std::multiset<uint64_t> want_sizes;
  for (uint32_t t = 0; t < kWorkers; t++) want_sizes.insert(LocalObjectSize(l, t, size));

  // getstripe reports 6+0 over 6 targets.
  std::string out;
  ASSERT_EQ(c.Cfs("getstripe --json '" + path + "'", &out), 0) << out;
  {
    auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
    const nlohmann::json* lj = FindLayout(j);
    ASSERT_NE(lj, nullptr) << "no layout object in getstripe --json output:\n" << out;
    EXPECT_EQ((*lj)["k"], 6) << out;
    EXPECT_EQ((*lj)["m"], 0) << out;
    EXPECT_EQ((*lj)["unit"], 1 << 20) << out;
    ASSERT_EQ((*lj)["targets"].size(), 6u) << out;
    std::set<uint32_t> distinct;
    for (const auto& t : (*lj)["targets"]) distinct.insert(t.get<uint32_t>());
    EXPECT_EQ(distinct.size(), 6u) << "the 6 units of a stripe must be on 6 different targets";
  }

  // The data reaches the S-workers' disks once it is fsynced: fsync and drop caches.
  {
    int fd = open(path.c_str(), O_RDONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fsync(fd), 0) << strerror(errno);
    close(fd);
  }
  ASSERT_EQ(DropCaches(), "");

  std::multiset<uint64_t> got_sizes;
  std::set<uint32_t> indexes_seen;
  uint64_t total = 0;
  for (int w = 0; w < kWorkers; w++) {
    std::string tdir = c.dir() + "/storage-" + std::to_string(w) + "/t0";
    auto objs = ObjectsOf(tdir, ino);
    ASSERT_EQ(objs.size(), 1u) << "storage-" << w << " should hold exactly one object of inode "
                               << ino << " under " << tdir;
    struct stat os;
    ASSERT_EQ(stat(objs[0].c_str(), &os), 0);
    got_sizes.insert(os.st_size);
    total += os.st_size;
    EXPECT_GT(os.st_size, 0) << objs[0];
    // Which target index of the layout is this object? Its content says.
    std::string why, last_why;
    int matches = 0;
    for (uint32_t t = 0; t < kWorkers; t++) {
      if (static_cast<uint64_t>(os.st_size) != LocalObjectSize(l, t, size)) continue;
      if (ObjectMatches(objs[0], l, t, size, seed, &why)) {
        matches++;
        EXPECT_TRUE(indexes_seen.insert(t).second) << "two workers hold target index " << t;
      } else {
        last_why = why;
      }
    }
    EXPECT_EQ(matches, 1) << "storage-" << w << " object " << objs[0]
                          << " does not hold one target's units byte-exact: " << last_why;
  }
  EXPECT_EQ(got_sizes, want_sizes) << "object sizes on disk differ from the layout arithmetic";
  EXPECT_EQ(total, size) << "6+0: the objects together hold exactly the file";
  EXPECT_EQ(indexes_seen.size(), static_cast<size_t>(kWorkers));

  EXPECT_EQ(CheckPatternFile(path, size, seed), "");
}

}  // namespace
}  // namespace cfs::test
