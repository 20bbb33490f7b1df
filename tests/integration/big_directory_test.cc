// 20,000 files in one directory, through the mount: create (4 threads), readdir
// sees exactly all names once, stat a sample (sizes and content), unlink all,
// and the directory is empty (and removable) afterwards.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr int kFiles = 20000;
constexpr int kThreads = 4;

std::string Name(int i) { return "file-" + std::to_string(i) + "-with-a-longer-name-to-fill-pages"; }
// Every 50th file has content (its name), the others are empty.
bool HasContent(int i) { return i % 50 == 0; }

double Secs(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(BigDirectoryTest, TwentyThousandFiles) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  const std::string dir = c.Path("big");
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << strerror(errno);

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::string> errs(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = t; i < kFiles && errs[t].empty(); i += kThreads) {
        std::string p = dir + "/" + Name(i);
        int fd = open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
          errs[t] = "create " + p + ": " + strerror(errno);
          break;
        }
        if (HasContent(i)) {
          std::string content = Name(i);
          if (write(fd, content.data(), content.size()) != static_cast<ssize_t>(content.size()))
            errs[t] = "write " + p + ": " + strerror(errno);
        }
        if (close(fd) != 0) errs[t] = "close " + p + ": " + strerror(errno);
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs) ASSERT_EQ(e, "");
  printf("created %d files in %.1f s\n", kFiles, Secs(t0));

  // readdir: exactly the names we made, each once, all regular files.
  t0 = std::chrono::steady_clock::now();
  DIR* d = opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << strerror(errno);
  std::vector<std::string> names;
  int dots = 0;
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") {
      dots++;
      continue;
    }
    EXPECT_TRUE(e->d_type == DT_REG || e->d_type == DT_UNKNOWN) << n << " d_type " << int(e->d_type);
    names.push_back(n);
    errno = 0;
  }
  ASSERT_EQ(errno, 0) << "readdir: " << strerror(errno);
  closedir(d);
  printf("listed %zu entries in %.1f s\n", names.size(), Secs(t0));
  std::set<std::string> uniq(names.begin(), names.end());
  EXPECT_EQ(uniq.size(), names.size()) << "readdir returned some names twice";
  std::set<std::string> want;
  for (int i = 0; i < kFiles; i++) want.insert(Name(i));
  EXPECT_EQ(names.size(), static_cast<size_t>(kFiles));
  std::vector<std::string> missing, extra;
  std::set_difference(want.begin(), want.end(), uniq.begin(), uniq.end(), std::back_inserter(missing));
  std::set_difference(uniq.begin(), uniq.end(), want.begin(), want.end(), std::back_inserter(extra));
  EXPECT_TRUE(missing.empty()) << missing.size() << " names missing, e.g. " << missing.front();
  EXPECT_TRUE(extra.empty()) << extra.size() << " unexpected names, e.g. " << extra.front();

  // The directory's own attributes.
  struct stat st;
  ASSERT_EQ(stat(dir.c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));

  // stat and read a sample, after dropping caches (fresh lookups).
  ASSERT_EQ(DropCaches(), "");
  std::mt19937 rng(7);
  for (int k = 0; k < 300; k++) {
    int i = (k < 100) ? static_cast<int>(rng() % kFiles) : (k - 100) * 100;  // plus every 100th
    std::string p = dir + "/" + Name(i);
    ASSERT_EQ(stat(p.c_str(), &st), 0) << p << ": " << strerror(errno);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0644u);
    EXPECT_EQ(st.st_nlink, 1u);
    EXPECT_EQ(static_cast<size_t>(st.st_size), HasContent(i) ? Name(i).size() : 0u) << p;
    if (HasContent(i)) {
      EXPECT_EQ(ReadFileStr(p), Name(i)) << p;
    }
  }
  std::string nope = dir + "/" + Name(kFiles);
  EXPECT_NE(stat(nope.c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);

  // Unlink all (4 threads), then the directory is empty.
  t0 = std::chrono::steady_clock::now();
  ts.clear();
  for (int t = 0; t < kThreads; t++)
    ts.emplace_back([&, t] {
      for (int i = t; i < kFiles; i += kThreads) {
        std::string p = dir + "/" + Name(i);
        if (unlink(p.c_str()) != 0) {
          errs[t] = "unlink " + p + ": " + strerror(errno);
          break;
        }
      }
    });
  for (auto& t : ts) t.join();
  for (auto& e : errs) ASSERT_EQ(e, "");
  printf("unlinked %d files in %.1f s\n", kFiles, Secs(t0));
  int err = 0;
  auto left = ListDir(dir, &err);
  ASSERT_EQ(err, 0);
  EXPECT_TRUE(left.empty()) << left.size() << " entries left, e.g. " << (left.empty() ? "" : left[0]);
  EXPECT_EQ(rmdir(dir.c_str()), 0) << strerror(errno);
  EXPECT_NE(stat(dir.c_str(), &st), 0);
}

}  // namespace
}  // namespace cfs::test
