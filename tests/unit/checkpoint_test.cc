// Checkpoint set names and manifests (client/checkpoint.h) without a cluster;
// the operations themselves run against real clusters in ckpt_test.
#include "client/checkpoint.h"

#include <gtest/gtest.h>

namespace cfs::client {
namespace {

TEST(CkptNames, SetsSplitIntoANormalizedJobAndAName) {
  auto s = ParseCkptSet("job/step-000123");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->job, "/job");
  EXPECT_EQ(s->name, "step-000123");
  s = ParseCkptSet("/proj//run7/step.1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->job, "/proj/run7");
  EXPECT_EQ(s->name, "step.1");
  s = ParseCkptSet("j/" + std::string(255, 'n'));
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->name.size(), 255u);
  auto j = ParseCkptJob("/a/b/");
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(*j, "/a/b");
}

TEST(CkptNames, BadNamesAreEinval) {
  for (const std::string& bad : std::vector<std::string>{"", "step", "/step", "job/", "job/.hidden", "job/.pending", "/job/..", "../job/n", "a/./n",
        "a/../n", "a/.pending/n", "j/" + std::string(256, 'n'), "/" + std::string(256, 'j') + "/n",
        std::string("j/a\0b", 5)}) {
    auto s = ParseCkptSet(bad);
    EXPECT_FALSE(s.ok()) << "accepted '" << bad << "'";
    if (!s.ok()) {
      EXPECT_EQ(s.status().err(), EINVAL) << bad;
    }
  }
  for (const std::string bad : {"", "/", "//", "a/..", "."}) {
    auto j = ParseCkptJob(bad);
    EXPECT_FALSE(j.ok()) << "accepted job '" << bad << "'";
    if (!j.ok()) {
      EXPECT_EQ(j.status().err(), EINVAL) << bad;
    }
  }
}

CkptManifest Sample() {
  CkptManifest m;
  m.name = "step-7";
  m.seq = 7;
  m.commit_ns = 1700000000123456789;
  m.commit_id = "00ff";
  m.files = {{"rank0", 10}, {"sub/rank1", 0}, {"shared", uint64_t{5} << 40}};
  m.bytes = 10 + (uint64_t{5} << 40);
  return m;
}

TEST(CkptManifest, RoundTrips) {
  CkptManifest m = Sample();
  auto back = ParseManifest(ManifestToJson(m), "step-7");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->name, m.name);
  EXPECT_EQ(back->seq, m.seq);
  EXPECT_EQ(back->commit_ns, m.commit_ns);
  EXPECT_EQ(back->commit_id, m.commit_id);
  EXPECT_EQ(back->bytes, m.bytes);
  ASSERT_EQ(back->files.size(), 3u);
  for (size_t i = 0; i < 3; i++) {
    EXPECT_EQ(back->files[i].path, m.files[i].path);
    EXPECT_EQ(back->files[i].size, m.files[i].size);
  }
}

TEST(CkptManifest, IncompleteOrForeignManifestsAreRejected) {
  const std::string good = ManifestToJson(Sample());
  // Any prefix (a torn write) is not a manifest.
  for (size_t n = 0; n < good.size(); n += 7) EXPECT_FALSE(ParseManifest(good.substr(0, n), "step-7").ok()) << n;
  // A set renamed by hand is not the set its manifest describes.
  EXPECT_FALSE(ParseManifest(good, "step-8").ok());
  CkptManifest m = Sample();
  m.bytes += 1;  // totals that do not add up
  EXPECT_FALSE(ParseManifest(ManifestToJson(m), "step-7").ok());
  m = Sample();
  m.seq = 0;
  EXPECT_FALSE(ParseManifest(ManifestToJson(m), "step-7").ok());
  EXPECT_FALSE(ParseManifest("{\"format\":\"cfs-checkpoint-set\",\"version\":2}", "step-7").ok());
  EXPECT_FALSE(ParseManifest("[1,2]", "step-7").ok());
  EXPECT_FALSE(ParseManifest("{\"format\":\"cfs-checkpoint-set\",\"version\":1,\"name\":7}", "step-7").ok());
}

}  // namespace
}  // namespace cfs::client
