// Whole-cluster restart: files of many sizes (and a small tree with a symlink,
// a hard link and an xattr) survive `cfs local down` + `cfs local up` on the
// same DIR byte for byte; the file system keeps working afterwards.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

struct FileSpec {
  std::string name;
  uint64_t size;
  uint64_t seed;
};

std::vector<FileSpec> Files() {
  // Around block (64 KiB), unit (1 MiB) and stripe (6 MiB) boundaries.
  const uint64_t sizes[] = {0,        1,           4095,        65536,          65537,
                            kMiB - 1, kMiB,        kMiB + 1,    6 * kMiB - 1,   6 * kMiB,
                            6 * kMiB + 1, 13 * kMiB + 777, 37 * kMiB + 12345};
  std::vector<FileSpec> v;
  uint64_t seed = 1000;
  for (uint64_t s : sizes) v.push_back({"f-" + std::to_string(s), s, seed++});
  return v;
}

std::string CheckTree(const LocalCluster& c, const std::vector<FileSpec>& files) {
  for (const auto& f : files) {
    std::string e = CheckPatternFile(c.Path("data/" + f.name), f.size, f.seed);
    if (!e.empty()) return e;
  }
  bool ok = false;
  std::string s = ReadFileStr(c.Path("dir/sub/note.txt"), &ok);
  if (!ok || s != "a note\n") return "dir/sub/note.txt: '" + s + "'";
  char buf[256];
  ssize_t n = readlink(c.Path("dir/link").c_str(), buf, sizeof buf);
  if (n < 0 || std::string(buf, n) != "sub/note.txt") return "readlink dir/link failed or wrong";
  s = ReadFileStr(c.Path("dir/link"), &ok);
  if (!ok || s != "a note\n") return "reading through dir/link: '" + s + "'";
  struct stat a, b;
  if (stat(c.Path("dir/sub/note.txt").c_str(), &a) != 0 || stat(c.Path("dir/hard").c_str(), &b) != 0)
    return "stat of hard link pair failed";
  if (a.st_ino != b.st_ino || a.st_nlink != 2) return "hard link lost: nlink " + std::to_string(a.st_nlink);
  if ((a.st_mode & 07777) != 0640) return "mode of note.txt changed";
  n = getxattr(c.Path("dir/sub/note.txt").c_str(), "user.color", buf, sizeof buf);
  if (n < 0 || std::string(buf, n) != "blue") return "xattr user.color lost";
  auto names = ListDir(c.Path("data"));
  if (names.size() != files.size()) return "data/ lists " + std::to_string(names.size()) + " names";
  return "";
}

TEST(RestartTest, WholeClusterRestartKeepsEverything) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  auto files = Files();
  ASSERT_EQ(mkdir(c.Path("data").c_str(), 0755), 0);
  for (const auto& f : files)
    ASSERT_TRUE(WritePatternFile(c.Path("data/" + f.name), f.size, f.seed, 300 * 1024)) << f.name;
  ASSERT_EQ(mkdir(c.Path("dir").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(c.Path("dir/sub").c_str(), 0700), 0);
  ASSERT_TRUE(WriteFileStr(c.Path("dir/sub/note.txt"), "a note\n"));
  ASSERT_EQ(chmod(c.Path("dir/sub/note.txt").c_str(), 0640), 0);
  ASSERT_EQ(symlink("sub/note.txt", c.Path("dir/link").c_str()), 0);
  ASSERT_EQ(link(c.Path("dir/sub/note.txt").c_str(), c.Path("dir/hard").c_str()), 0);
  ASSERT_EQ(setxattr(c.Path("dir/sub/note.txt").c_str(), "user.color", "blue", 4, 0), 0)
      << strerror(errno);
  ASSERT_EQ(CheckTree(c, files), "") << "before the restart";

  for (int round = 0; round < 2; round++) {
    std::vector<pid_t> pids = {c.MetaPid()};
    for (int i = 0; i < 6; i++) pids.push_back(c.WorkerPid(i));
    for (pid_t p : pids) ASSERT_GT(p, 0) << "pid files under " << c.dir() << "/run";
    ASSERT_EQ(c.Down(), "") << "round " << round;
    // Down means down: no daemon left, nothing mounted.
    for (size_t i = 0; i < pids.size(); i++)
      EXPECT_FALSE(ProcessAlive(pids[i])) << (i == 0 ? "cfs-meta" : "cfs-storage " + std::to_string(i - 1))
                                     << " (pid " << pids[i] << ") still running after down";
    EXPECT_NE(cfs::test::Run("mountpoint -q '" + c.mnt() + "'"), 0) << "still mounted after down";

    ASSERT_EQ(c.Up(), "") << "round " << round;
    ASSERT_EQ(DropCaches(), "");
    EXPECT_EQ(CheckTree(c, files), "") << "after restart " << round;

    // Still writable, and new data survives the next round too.
    FileSpec extra{"after-" + std::to_string(round), 7 * kMiB + 3, 5000u + round};
    ASSERT_TRUE(WritePatternFile(c.Path("data/" + extra.name), extra.size, extra.seed));
    files.push_back(extra);
    ASSERT_EQ(unlink(c.Path("data/" + files[round].name).c_str()), 0);  // and deletes work
    files.erase(files.begin() + round);
  }
  ASSERT_EQ(c.Down(), "");
  ASSERT_EQ(c.Up(), "");
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckTree(c, files), "") << "after the last restart";
}

}  // namespace
}  // namespace cfs::test
