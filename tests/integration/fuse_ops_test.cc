// Every FUSE operation of cfs-fuse through real syscalls on a real mount of a
// real local cluster (cfs local up), checked by content and attributes.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fs.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <signal.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "integration/cluster_fixture.h"

namespace cfs::test {
namespace {

class FuseOps : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster();
    std::string err = cluster_->Up();
    if (!err.empty()) {
      setup_error_ = new std::string(err);
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (setup_error_) GTEST_FAIL() << *setup_error_;
    // Each test in its own directory.
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = cluster_->Path(info->name());
    ASSERT_EQ(0, mkdir(dir_.c_str(), 0755)) << dir_ << ": " << strerror(errno);
  }
  std::string P(const std::string& rel) const { return dir_ + "/" + rel; }

  static LocalCluster* cluster_;
  static std::string* setup_error_;
  std::string dir_;
};
LocalCluster* FuseOps::cluster_ = nullptr;
std::string* FuseOps::setup_error_ = nullptr;

std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

bool WriteAll(const std::string& path, const std::string& data, int flags = O_WRONLY | O_CREAT | O_TRUNC) {
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) return false;
  ssize_t n = write(fd, data.data(), data.size());
  return close(fd) == 0 && n == static_cast<ssize_t>(data.size());
}

struct stat Stat(const std::string& p) {
  struct stat st;
  memset(&st, 0, sizeof st);
  if (lstat(p.c_str(), &st) != 0) st.st_ino = 0;
  return st;
}

std::vector<std::string> List(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) out.push_back(e->d_name);
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

TEST_F(FuseOps, WriteReadStatAndPageCache) {
  const uint64_t size = (5 << 20) + 12345;  // several stripes, odd tail
  ASSERT_TRUE(WritePatternFile(P("f"), size, 7));
  EXPECT_EQ("", CheckPatternFile(P("f"), size, 7));
  struct stat st = Stat(P("f"));
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(static_cast<off_t>(size), st.st_size);
  EXPECT_EQ(0644u, st.st_mode & 07777);
  EXPECT_EQ(0u, st.st_uid);
  EXPECT_EQ(1u, st.st_nlink);
  // Read again within one open (page cache) and after reopening.
  int fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string a(1 << 20, '\0'), b(1 << 20, '\0'), want(1 << 20, '\0');
  ASSERT_EQ(1 << 20, pread(fd, a.data(), a.size(), 3 << 20));
  ASSERT_EQ(1 << 20, pread(fd, b.data(), b.size(), 3 << 20));
  FillPattern(want.data(), want.size(), 7, 3 << 20);
  EXPECT_TRUE(a == want && b == want);
  // Reading at and past EOF.
  char c;
  EXPECT_EQ(0, pread(fd, &c, 1, static_cast<off_t>(size)));
  EXPECT_EQ(0, pread(fd, &c, 1, static_cast<off_t>(size) + 100000));
  close(fd);
  // Overwrite in the middle, then check the whole file.
  fd = open(P("f").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  std::string patch(777, 'Z');
  ASSERT_EQ(777, pwrite(fd, patch.data(), patch.size(), 1000000));
  ASSERT_EQ(0, fsync(fd));
  ASSERT_EQ(0, close(fd));
  std::string all = ReadAll(P("f"));
  ASSERT_EQ(size, all.size());
  std::string expect(size, '\0');
  FillPattern(expect.data(), size, 7);
  memset(expect.data() + 1000000, 'Z', 777);
  EXPECT_TRUE(all == expect);
}

TEST_F(FuseOps, CreateExclusiveAndTruncatingOpen) {
  ASSERT_TRUE(WriteAll(P("f"), "hello world"));
  EXPECT_EQ(-1, open(P("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600));
  EXPECT_EQ(EEXIST, errno);
  int fd = open(P("f").c_str(), O_WRONLY | O_TRUNC);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(0, st.st_size);
  ASSERT_EQ(3, write(fd, "abc", 3));
  close(fd);
  EXPECT_EQ("abc", ReadAll(P("f")));
  // O_CREAT|O_TRUNC on an existing file
  ASSERT_TRUE(WriteAll(P("f"), "xy"));
  EXPECT_EQ("xy", ReadAll(P("f")));
  // New file gets the requested mode (umask 022 applied by the kernel).
  mode_t old = umask(022);
  fd = open(P("g").c_str(), O_CREAT | O_EXCL | O_RDWR, 0666);
  umask(old);
  ASSERT_GE(fd, 0);
  close(fd);
  EXPECT_EQ(0644u, Stat(P("g")).st_mode & 07777);
  EXPECT_EQ(-1, open(P("missing").c_str(), O_RDONLY));
  EXPECT_EQ(ENOENT, errno);
}

TEST_F(FuseOps, SetattrChmodChownUtimensTruncate) {
  ASSERT_TRUE(WriteAll(P("f"), std::string(10000, 'a')));
  ASSERT_EQ(0, chmod(P("f").c_str(), 0640));
  EXPECT_EQ(0640u, Stat(P("f")).st_mode & 07777);
  EXPECT_TRUE(S_ISREG(Stat(P("f")).st_mode));
  ASSERT_EQ(0, chmod(P("f").c_str(), 04755));
  EXPECT_EQ(04755u, Stat(P("f")).st_mode & 07777);
  ASSERT_EQ(0, chown(P("f").c_str(), 1234, 5678));
  EXPECT_EQ(1234u, Stat(P("f")).st_uid);
  EXPECT_EQ(5678u, Stat(P("f")).st_gid);
  ASSERT_EQ(0, chown(P("f").c_str(), -1, 42));
  EXPECT_EQ(1234u, Stat(P("f")).st_uid);
  EXPECT_EQ(42u, Stat(P("f")).st_gid);

  timespec ts[2] = {{1000000000, 123456789}, {1500000000, 987654321}};
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), ts, 0));
  struct stat st = Stat(P("f"));
  EXPECT_EQ(1000000000, st.st_atim.tv_sec);
  EXPECT_EQ(123456789, st.st_atim.tv_nsec);
  EXPECT_EQ(1500000000, st.st_mtim.tv_sec);
  EXPECT_EQ(987654321, st.st_mtim.tv_nsec);
  // UTIME_NOW for mtime, UTIME_OMIT for atime.
  timespec now_ts[2] = {{0, UTIME_OMIT}, {0, UTIME_NOW}};
  time_t before = time(nullptr);
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), now_ts, 0));
  st = Stat(P("f"));
  EXPECT_EQ(1000000000, st.st_atim.tv_sec);
  EXPECT_GE(st.st_mtim.tv_sec, before - 2);
  EXPECT_LE(st.st_mtim.tv_sec, time(nullptr) + 2);
  // Both now (utimes(NULL)).
  ASSERT_EQ(0, utimensat(AT_FDCWD, P("f").c_str(), nullptr, 0));
  EXPECT_GE(Stat(P("f")).st_atim.tv_sec, before - 2);

  // truncate by path: shrink, then extend with zeros.
  ASSERT_EQ(0, truncate(P("f").c_str(), 100));
  EXPECT_EQ(100, Stat(P("f")).st_size);
  EXPECT_EQ(std::string(100, 'a'), ReadAll(P("f")));
  ASSERT_EQ(0, truncate(P("f").c_str(), 3 << 20));
  std::string got = ReadAll(P("f"));
  ASSERT_EQ(size_t(3 << 20), got.size());
  EXPECT_EQ(std::string(100, 'a'), got.substr(0, 100));
  EXPECT_EQ(std::string((3 << 20) - 100, '\0'), got.substr(100));
  // ftruncate through an open handle with buffered writes.
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(5, pwrite(fd, "hello", 5, 0));
  ASSERT_EQ(0, ftruncate(fd, 3));
  struct stat fst;
  ASSERT_EQ(0, fstat(fd, &fst));
  EXPECT_EQ(3, fst.st_size);
  ASSERT_EQ(2, pwrite(fd, "XY", 2, 5));
  close(fd);
  EXPECT_EQ(std::string("hel\0\0XY", 7), ReadAll(P("f")));
}

TEST_F(FuseOps, MkdirRmdirReaddir) {
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0750));
  struct stat st = Stat(P("d"));
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(0750u, st.st_mode & 07777);
  EXPECT_EQ(-1, mkdir(P("d").c_str(), 0755));
  EXPECT_EQ(EEXIST, errno);
  ASSERT_TRUE(WriteAll(P("d/a"), "1"));
  ASSERT_EQ(0, mkdir(P("d/sub").c_str(), 0755));
  ASSERT_EQ(0, symlink("a", P("d/ln").c_str()));
  EXPECT_EQ((std::vector<std::string>{".", "..", "a", "ln", "sub"}), List(P("d")));
  // d_type is right, and "." / ".." carry the right inodes.
  DIR* dp = opendir(P("d").c_str());
  ASSERT_NE(nullptr, dp);
  while (dirent* e = readdir(dp)) {
    std::string n = e->d_name;
    if (n == "a") {
      EXPECT_EQ(DT_REG, e->d_type);
    }
    if (n == "sub") {
      EXPECT_EQ(DT_DIR, e->d_type);
    }
    if (n == "ln") {
      EXPECT_EQ(DT_LNK, e->d_type);
    }
    if (n == ".") {
      EXPECT_EQ(Stat(P("d")).st_ino, e->d_ino);
    }
    if (n == "..") {
      EXPECT_EQ(Stat(dir_).st_ino, e->d_ino);
    }
    if (n == "a") {
      EXPECT_EQ(Stat(P("d/a")).st_ino, e->d_ino);
    }
  }
  closedir(dp);
  EXPECT_EQ(3u, Stat(P("d")).st_nlink);  // ".", its name, sub's ".."
  EXPECT_EQ(-1, rmdir(P("d").c_str()));
  EXPECT_EQ(ENOTEMPTY, errno);
  EXPECT_EQ(-1, rmdir(P("d/a").c_str()));
  EXPECT_EQ(ENOTDIR, errno);
  EXPECT_EQ(-1, unlink(P("d/sub").c_str()));
  EXPECT_EQ(EISDIR, errno);
  ASSERT_EQ(0, unlink(P("d/a").c_str()));
  ASSERT_EQ(0, unlink(P("d/ln").c_str()));
  ASSERT_EQ(0, rmdir(P("d/sub").c_str()));
  ASSERT_EQ(0, rmdir(P("d").c_str()));
  EXPECT_EQ(0u, Stat(P("d")).st_ino);
  EXPECT_EQ((std::vector<std::string>{".", ".."}), List(dir_));
}

TEST_F(FuseOps, ReaddirLargeDirectoryEachNameOnce) {
  const int n = 2500;  // several M-worker batches and many kernel buffers
  std::set<std::string> want = {".", ".."};
  for (int i = 0; i < n; i++) {
    std::string name = "file-with-a-longish-name-" + std::to_string(i);
    int fd = open(P(name).c_str(), O_CREAT | O_WRONLY, 0644);
    ASSERT_GE(fd, 0) << name << ": " << strerror(errno);
    close(fd);
    want.insert(name);
  }
  std::vector<std::string> got = List(dir_);
  EXPECT_EQ(want.size(), got.size());
  EXPECT_EQ(want, std::set<std::string>(got.begin(), got.end()));
  // telldir/seekdir resume at stable positions.
  DIR* d = opendir(dir_.c_str());
  ASSERT_NE(nullptr, d);
  for (int i = 0; i < 1000; i++) ASSERT_NE(nullptr, readdir(d));
  long pos = telldir(d);
  std::string next = readdir(d)->d_name;
  rewinddir(d);
  readdir(d);
  seekdir(d, pos);
  dirent* e = readdir(d);
  ASSERT_NE(nullptr, e);
  EXPECT_EQ(next, e->d_name);
  closedir(d);
  // Removing entries while listing: everything not removed is still seen once.
  d = opendir(dir_.c_str());
  ASSERT_NE(nullptr, d);
  std::multiset<std::string> seen;
  int k = 0;
  while (dirent* e2 = readdir(d)) {
    seen.insert(e2->d_name);
    if (++k == 500)
      for (int i = 0; i < n; i += 2) unlink(P("file-with-a-longish-name-" + std::to_string(i)).c_str());
  }
  closedir(d);
  for (int i = 1; i < n; i += 2)
    EXPECT_EQ(1u, seen.count("file-with-a-longish-name-" + std::to_string(i))) << i;
}

TEST_F(FuseOps, UnlinkAndRename) {
  ASSERT_TRUE(WriteAll(P("a"), "AAA"));
  ASSERT_TRUE(WriteAll(P("b"), "BBBB"));
  ASSERT_EQ(0, rename(P("a").c_str(), P("c").c_str()));
  EXPECT_EQ(0u, Stat(P("a")).st_ino);
  EXPECT_EQ("AAA", ReadAll(P("c")));
  // Replacing rename.
  ASSERT_EQ(0, rename(P("c").c_str(), P("b").c_str()));
  EXPECT_EQ("AAA", ReadAll(P("b")));
  EXPECT_EQ(0u, Stat(P("c")).st_ino);
  // Across directories.
  ASSERT_EQ(0, mkdir(P("d1").c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("d2").c_str(), 0755));
  ASSERT_EQ(0, rename(P("b").c_str(), P("d1/x").c_str()));
  ASSERT_EQ(0, rename(P("d1").c_str(), P("d2/d1").c_str()));
  EXPECT_EQ("AAA", ReadAll(P("d2/d1/x")));
  EXPECT_EQ(3u, Stat(P("d2")).st_nlink);
  // A directory into its own subtree.
  EXPECT_EQ(-1, rename(P("d2").c_str(), P("d2/d1/inside").c_str()));
  EXPECT_EQ(EINVAL, errno);
  // Over a non-empty directory.
  ASSERT_EQ(0, mkdir(P("e").c_str(), 0755));
  EXPECT_EQ(-1, rename(P("e").c_str(), P("d2").c_str()));
  EXPECT_EQ(ENOTEMPTY, errno);

  // renameat2 flags through the raw syscall.
  ASSERT_TRUE(WriteAll(P("p"), "PPP"));
  ASSERT_TRUE(WriteAll(P("q"), "QQ"));
  auto renameat2 = [](const std::string& a, const std::string& b, unsigned flags) {
    return syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), flags);
  };
  EXPECT_EQ(-1, renameat2(P("p"), P("q"), RENAME_NOREPLACE));
  EXPECT_EQ(EEXIST, errno);
  EXPECT_EQ("PPP", ReadAll(P("p")));
  EXPECT_EQ(0, renameat2(P("p"), P("r"), RENAME_NOREPLACE));
  EXPECT_EQ("PPP", ReadAll(P("r")));
  ino_t ir = Stat(P("r")).st_ino, iq = Stat(P("q")).st_ino;
  ASSERT_EQ(0, renameat2(P("r"), P("q"), RENAME_EXCHANGE)) << strerror(errno);
  EXPECT_EQ("QQ", ReadAll(P("r")));
  EXPECT_EQ("PPP", ReadAll(P("q")));
  EXPECT_EQ(iq, Stat(P("r")).st_ino);
  EXPECT_EQ(ir, Stat(P("q")).st_ino);
  // Exchange a file with a directory across directories.
  ASSERT_EQ(0, renameat2(P("q"), P("d2/d1"), RENAME_EXCHANGE)) << strerror(errno);
  EXPECT_TRUE(S_ISDIR(Stat(P("q")).st_mode));
  EXPECT_EQ("AAA", ReadAll(P("q/x")));
  EXPECT_EQ("PPP", ReadAll(P("d2/d1")));
  EXPECT_EQ(-1, renameat2(P("r"), P("nonexistent"), RENAME_EXCHANGE));
  EXPECT_EQ(ENOENT, errno);
  EXPECT_EQ(-1, renameat2(P("r"), P("s"), RENAME_WHITEOUT));
  EXPECT_EQ(EINVAL, errno);
  EXPECT_EQ("QQ", ReadAll(P("r")));
}

TEST_F(FuseOps, HardLinksCountsAndModesImmediately) {
  ASSERT_TRUE(WriteAll(P("a"), "data"));
  ASSERT_EQ(0, link(P("a").c_str(), P("b").c_str()));
  EXPECT_EQ(2u, Stat(P("a")).st_nlink);
  EXPECT_EQ(2u, Stat(P("b")).st_nlink);
  EXPECT_EQ(Stat(P("a")).st_ino, Stat(P("b")).st_ino);
  // chmod through one name shows through the other at once.
  ASSERT_EQ(0, chmod(P("b").c_str(), 0600));
  EXPECT_EQ(0600u, Stat(P("a")).st_mode & 07777);
  // A third link in another directory; rename one name.
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, link(P("b").c_str(), P("d/c").c_str()));
  EXPECT_EQ(3u, Stat(P("a")).st_nlink);
  ASSERT_EQ(0, rename(P("a").c_str(), P("d/a2").c_str()));
  EXPECT_EQ(3u, Stat(P("b")).st_nlink);
  EXPECT_EQ(3u, Stat(P("d/a2")).st_nlink);
  ASSERT_EQ(0, chmod(P("d/c").c_str(), 0751));
  EXPECT_EQ(0751u, Stat(P("b")).st_mode & 07777);
  EXPECT_EQ(0751u, Stat(P("d/a2")).st_mode & 07777);
  // Write through one name, read through another.
  ASSERT_TRUE(WriteAll(P("d/c"), "changed", O_WRONLY | O_TRUNC));
  EXPECT_EQ("changed", ReadAll(P("b")));
  ASSERT_EQ(0, unlink(P("b").c_str()));
  EXPECT_EQ(2u, Stat(P("d/c")).st_nlink);
  // rename over one of its own links: a no-op per POSIX.
  ASSERT_EQ(0, link(P("d/c").c_str(), P("e").c_str()));
  ASSERT_EQ(0, rename(P("e").c_str(), P("d/c").c_str()));
  EXPECT_EQ(3u, Stat(P("d/c")).st_nlink);
  EXPECT_EQ("changed", ReadAll(P("d/a2")));
  // Links to directories are refused.
  EXPECT_EQ(-1, link(P("d").c_str(), P("dl").c_str()));
  EXPECT_EQ(EPERM, errno);
}

TEST_F(FuseOps, SymlinkReadlink) {
  ASSERT_TRUE(WriteAll(P("target"), "T"));
  ASSERT_EQ(0, symlink("target", P("ln").c_str()));
  char buf[PATH_MAX];
  ssize_t n = readlink(P("ln").c_str(), buf, sizeof buf);
  ASSERT_EQ(6, n);
  EXPECT_EQ("target", std::string(buf, n));
  struct stat st = Stat(P("ln"));
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(6, st.st_size);
  EXPECT_EQ("T", ReadAll(P("ln")));
  // Dangling and long targets.
  std::string longt(4000, 'x');
  ASSERT_EQ(0, symlink(longt.c_str(), P("long").c_str()));
  n = readlink(P("long").c_str(), buf, sizeof buf);
  EXPECT_EQ(longt, std::string(buf, std::max<ssize_t>(n, 0)));
  EXPECT_EQ(-1, open(P("long").c_str(), O_RDONLY));
  EXPECT_EQ(-1, readlink(P("target").c_str(), buf, sizeof buf));
  EXPECT_EQ(EINVAL, errno);
  ASSERT_EQ(0, symlink("/etc/hostname", P("abs").c_str()));
  EXPECT_EQ(ReadAll("/etc/hostname"), ReadAll(P("abs")));
}

TEST_F(FuseOps, MknodFifo) {
  ASSERT_EQ(0, mkfifo(P("fifo").c_str(), 0640));
  struct stat st = Stat(P("fifo"));
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(0640u, st.st_mode & 07777);
  // The pipe itself lives in this kernel.
  int fd = open(P("fifo").c_str(), O_RDWR | O_NONBLOCK);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(5, write(fd, "piped", 5));
  char buf[8];
  ASSERT_EQ(5, read(fd, buf, sizeof buf));
  EXPECT_EQ("piped", std::string(buf, 5));
  close(fd);
  ASSERT_EQ(0, mknod(P("reg").c_str(), S_IFREG | 0600, 0));
  EXPECT_TRUE(S_ISREG(Stat(P("reg")).st_mode));
  EXPECT_EQ(0, Stat(P("reg")).st_size);
  ASSERT_EQ(0, mknod(P("sock").c_str(), S_IFSOCK | 0600, 0));
  EXPECT_TRUE(S_ISSOCK(Stat(P("sock")).st_mode));
  ASSERT_EQ(0, mknod(P("chr").c_str(), S_IFCHR | 0600, makedev(1, 3)));
  st = Stat(P("chr"));
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(makedev(1, 3), st.st_rdev);
  ASSERT_EQ(0, unlink(P("fifo").c_str()));
}

TEST_F(FuseOps, StatfsSane) {
  struct statfs sf;
  ASSERT_EQ(0, statfs(dir_.c_str(), &sf));
  EXPECT_EQ(0x65735546, sf.f_type);  // FUSE_SUPER_MAGIC
  EXPECT_GT(sf.f_blocks, 0u);
  EXPECT_LE(sf.f_bfree, sf.f_blocks);
  EXPECT_LE(sf.f_bavail, sf.f_blocks);
  EXPECT_GT(sf.f_bavail, 0u);
  EXPECT_EQ(255, sf.f_namelen);
  EXPECT_GT(sf.f_bsize, 0);
  // /proc/mounts shows SOURCE MNT fuse.cfs.
  std::string mounts = ReadAll("/proc/mounts");
  EXPECT_NE(std::string::npos,
            mounts.find(cluster_->MetaAddr() + " " + cluster_->mnt() + " fuse.cfs "))
      << mounts;
}

TEST_F(FuseOps, Xattrs) {
  ASSERT_TRUE(WriteAll(P("f"), "x"));
  const char* f = nullptr;
  std::string fs = P("f");
  f = fs.c_str();
  ASSERT_EQ(0, setxattr(f, "user.color", "blue", 4, 0));
  ASSERT_EQ(0, setxattr(f, "user.empty", "", 0, 0));
  std::string big(60000, 'v');
  ASSERT_EQ(0, setxattr(f, "user.big", big.data(), big.size(), 0));
  char buf[65536];
  EXPECT_EQ(4, getxattr(f, "user.color", nullptr, 0));  // size query
  ASSERT_EQ(4, getxattr(f, "user.color", buf, sizeof buf));
  EXPECT_EQ("blue", std::string(buf, 4));
  EXPECT_EQ(-1, getxattr(f, "user.color", buf, 2));
  EXPECT_EQ(ERANGE, errno);
  EXPECT_EQ(0, getxattr(f, "user.empty", buf, sizeof buf));
  ASSERT_EQ(60000, getxattr(f, "user.big", buf, sizeof buf));
  EXPECT_EQ(big, std::string(buf, 60000));
  EXPECT_EQ(-1, getxattr(f, "user.none", buf, sizeof buf));
  EXPECT_EQ(ENODATA, errno);
  // Flags.
  EXPECT_EQ(-1, setxattr(f, "user.color", "red", 3, XATTR_CREATE));
  EXPECT_EQ(EEXIST, errno);
  EXPECT_EQ(-1, setxattr(f, "user.none", "red", 3, XATTR_REPLACE));
  EXPECT_EQ(ENODATA, errno);
  ASSERT_EQ(0, setxattr(f, "user.color", "red", 3, XATTR_REPLACE));
  ASSERT_EQ(3, getxattr(f, "user.color", buf, sizeof buf));
  EXPECT_EQ("red", std::string(buf, 3));
  // List.
  ssize_t need = listxattr(f, nullptr, 0);
  std::string want = std::string("user.big") + '\0' + "user.color" + '\0' + "user.empty" + '\0';
  ASSERT_EQ(static_cast<ssize_t>(want.size()), need);
  EXPECT_EQ(-1, listxattr(f, buf, 5));
  EXPECT_EQ(ERANGE, errno);
  ssize_t n = listxattr(f, buf, sizeof buf);
  ASSERT_EQ(need, n);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += strlen(buf + i) + 1) names.insert(buf + i);
  EXPECT_EQ((std::set<std::string>{"user.big", "user.color", "user.empty"}), names);
  // Remove.
  ASSERT_EQ(0, removexattr(f, "user.color"));
  EXPECT_EQ(-1, getxattr(f, "user.color", buf, sizeof buf));
  EXPECT_EQ(ENODATA, errno);
  EXPECT_EQ(-1, removexattr(f, "user.color"));
  EXPECT_EQ(ENODATA, errno);
  // Other namespaces are not supported.
  EXPECT_EQ(-1, setxattr(f, "trusted.x", "1", 1, 0));
  EXPECT_EQ(EOPNOTSUPP, errno);
  EXPECT_EQ(-1, setxattr(f, "security.x", "1", 1, 0));
  EXPECT_EQ(EOPNOTSUPP, errno);
  EXPECT_EQ(-1, getxattr(f, "security.selinux", buf, sizeof buf));
  EXPECT_EQ(EOPNOTSUPP, errno);
  // Directories carry user xattrs too.
  ASSERT_EQ(0, mkdir(P("d").c_str(), 0755));
  ASSERT_EQ(0, setxattr(P("d").c_str(), "user.k", "v", 1, 0));
  EXPECT_EQ(1, getxattr(P("d").c_str(), "user.k", buf, sizeof buf));
}

TEST_F(FuseOps, Access) {
  ASSERT_TRUE(WriteAll(P("f"), "x"));
  ASSERT_EQ(0, chmod(P("f").c_str(), 0644));
  EXPECT_EQ(0, access(P("f").c_str(), F_OK));
  EXPECT_EQ(0, access(P("f").c_str(), R_OK | W_OK));
  EXPECT_EQ(-1, access(P("f").c_str(), X_OK));  // root needs some x bit
  EXPECT_EQ(EACCES, errno);
  ASSERT_EQ(0, chmod(P("f").c_str(), 0700));
  EXPECT_EQ(0, access(P("f").c_str(), X_OK));
  EXPECT_EQ(-1, access(P("nope").c_str(), F_OK));
  EXPECT_EQ(ENOENT, errno);
}

TEST_F(FuseOps, AppendFromTwoDescriptors) {
  ASSERT_TRUE(WriteAll(P("log"), "start\n"));
  int a = open(P("log").c_str(), O_WRONLY | O_APPEND);
  int b = open(P("log").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  std::string want = "start\n";
  for (int i = 0; i < 20; i++) {
    std::string la = "a" + std::to_string(i) + "\n", lb = "bb" + std::to_string(i) + "\n";
    ASSERT_EQ(static_cast<ssize_t>(la.size()), write(a, la.data(), la.size()));
    ASSERT_EQ(static_cast<ssize_t>(lb.size()), write(b, lb.data(), lb.size()));
    want += la + lb;
  }
  // pwrite on O_APPEND appends too (Linux).
  ASSERT_EQ(3, pwrite(a, "end", 3, 0));
  want += "end";
  close(a);
  close(b);
  EXPECT_EQ(want, ReadAll(P("log")));
  // Append onto a large file from a fresh open.
  ASSERT_TRUE(WritePatternFile(P("big"), 3 << 20, 3));
  int c = open(P("big").c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(c, 0);
  ASSERT_EQ(4, write(c, "TAIL", 4));
  close(c);
  std::string got = ReadAll(P("big"));
  ASSERT_EQ(size_t(3 << 20) + 4, got.size());
  EXPECT_EQ("TAIL", got.substr(3 << 20));
}

TEST_F(FuseOps, UnlinkWhileOpen) {
  ASSERT_TRUE(WritePatternFile(P("f"), 2 << 20, 11));
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(0, unlink(P("f").c_str()));
  EXPECT_EQ(0u, Stat(P("f")).st_ino);
  EXPECT_EQ((std::vector<std::string>{".", ".."}), List(dir_));
  // Still readable and writable through the descriptor.
  std::string buf(1 << 20, '\0'), want(1 << 20, '\0');
  ASSERT_EQ(1 << 20, pread(fd, buf.data(), buf.size(), 1 << 20));
  FillPattern(want.data(), want.size(), 11, 1 << 20);
  EXPECT_TRUE(buf == want);
  ASSERT_EQ(6, pwrite(fd, "orphan", 6, 2 << 20));
  ASSERT_EQ(0, fsync(fd));
  struct stat st;
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ((2 << 20) + 6, st.st_size);
  EXPECT_EQ(0u, st.st_nlink);
  char six[6];
  ASSERT_EQ(6, pread(fd, six, 6, 2 << 20));
  EXPECT_EQ("orphan", std::string(six, 6));
  // A new file of the same name is a different file.
  ASSERT_TRUE(WriteAll(P("f"), "new"));
  ASSERT_EQ(6, pread(fd, six, 6, 2 << 20));
  EXPECT_EQ("orphan", std::string(six, 6));
  EXPECT_EQ(0, close(fd));
  EXPECT_EQ("new", ReadAll(P("f")));
}

TEST_F(FuseOps, NameAndPathLimits) {
  std::string n255(255, 'n'), n256(256, 'n');
  ASSERT_TRUE(WriteAll(P(n255), "max"));
  EXPECT_EQ("max", ReadAll(P(n255)));
  ASSERT_EQ(0, mkdir(P(std::string(255, 'd')).c_str(), 0755));
  EXPECT_EQ(-1, open(P(n256).c_str(), O_CREAT | O_WRONLY, 0644));
  EXPECT_EQ(ENAMETOOLONG, errno);
  EXPECT_EQ(-1, mkdir(P(n256).c_str(), 0755));
  EXPECT_EQ(ENAMETOOLONG, errno);
  EXPECT_EQ(-1, rename(P(n255).c_str(), P(n256).c_str()));
  EXPECT_EQ(ENAMETOOLONG, errno);
  EXPECT_EQ(-1, symlink("x", P(n256).c_str()));
  EXPECT_EQ(ENAMETOOLONG, errno);
  EXPECT_EQ(-1, link(P(n255).c_str(), P(n256).c_str()));
  EXPECT_EQ(ENAMETOOLONG, errno);
  // 255-byte names in listings.
  std::vector<std::string> l = List(dir_);
  EXPECT_EQ(1, std::count(l.begin(), l.end(), n255));

  // A path of PATH_MAX - 1 bytes (4095) works through absolute path syscalls.
  std::string path = dir_;
  const size_t target = PATH_MAX - 1;
  while (path.size() + 1 + 250 + 1 + 20 < target) {
    path += "/" + std::string(250, 'p');
    ASSERT_EQ(0, mkdir(path.c_str(), 0755)) << path.size() << " " << strerror(errno);
  }
  std::string file = path + "/" + std::string(target - path.size() - 1, 'f');
  ASSERT_EQ(target, file.size());
  ASSERT_TRUE(WriteAll(file, "deep")) << strerror(errno);
  EXPECT_EQ("deep", ReadAll(file));
  EXPECT_EQ(4, Stat(file).st_size);
  // One byte more is too long for the kernel's path walk.
  EXPECT_EQ(-1, open((file + "x").c_str(), O_CREAT | O_WRONLY, 0644));
  EXPECT_EQ(ENAMETOOLONG, errno);
}

TEST_F(FuseOps, FallocateUnsupportedOthersFallBack) {
  ASSERT_TRUE(WriteAll(P("f"), "0123456789"));
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(-1, fallocate(fd, 0, 0, 1 << 20));
  EXPECT_EQ(EOPNOTSUPP, errno);
  EXPECT_EQ(-1, fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4));
  EXPECT_EQ(EOPNOTSUPP, errno);
  // glibc's posix_fallocate falls back to writing.
  EXPECT_EQ(0, posix_fallocate(fd, 0, 100000));
  struct stat st;
  ASSERT_EQ(0, fstat(fd, &st));
  EXPECT_EQ(100000, st.st_size);
  // lseek (generic), flock (kernel-local), copy_file_range (kernel copy).
  EXPECT_EQ(100000, lseek(fd, 0, SEEK_END));
  EXPECT_EQ(0, flock(fd, LOCK_EX));
  EXPECT_EQ(0, flock(fd, LOCK_UN));
  int out = open(P("copy").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(out, 0);
  loff_t in_off = 0, out_off = 0;
  ssize_t copied = copy_file_range(fd, &in_off, out, &out_off, 10, 0);
  if (copied < 0) {
    // EXDEV/ENOSYS/EOPNOTSUPP mean "copy yourself"; nothing else is acceptable.
    EXPECT_TRUE(errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP) << strerror(errno);
  } else {
    EXPECT_EQ(10, copied);
  }
  close(out);
  close(fd);
  if (copied == 10) {
    EXPECT_EQ("0123456789", ReadAll(P("copy")));
  }
  // ioctl on a file: not a tty.
  fd = open(P("f").c_str(), O_RDONLY);
  int flags;
  EXPECT_EQ(-1, ioctl(fd, FS_IOC_GETFLAGS, &flags));
  close(fd);
}

TEST_F(FuseOps, FsyncFlushAndSeeWrites) {
  int fd = open(P("f").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  std::string data(3 << 20, '\0');
  FillPattern(data.data(), data.size(), 99);
  ASSERT_EQ(static_cast<ssize_t>(data.size()), write(fd, data.data(), data.size()));
  ASSERT_EQ(0, fdatasync(fd));
  ASSERT_EQ(0, fsync(fd));
  // Visible to another open before close.
  EXPECT_EQ("", CheckPatternFile(P("f"), data.size(), 99));
  ASSERT_EQ(0, close(fd));
  int dfd = open(dir_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  EXPECT_EQ(0, fsync(dfd));
  close(dfd);
  // The file has a layout the CLI can show, through its own client.
  std::string out;
  std::string rel = dir_.substr(cluster_->mnt().size());
  EXPECT_EQ(0, cluster_->Cfs("getstripe " + rel + "/f", &out)) << out;
}

TEST_F(FuseOps, SecondMountSeesSameFilesCloseToOpen) {
  std::string mnt2 = cluster_->dir() + "/mnt2";
  ASSERT_EQ(0, mkdir(mnt2.c_str(), 0755));
  std::string out;
  // The helper mount(8) runs, called as mount(8) calls it.
  ASSERT_EQ(0, cfs::test::Run(Bin("mount.cfs") + " " + cluster_->MetaAddr() + " " + mnt2 +
                       " -o defaults,_netdev,rw,noatime",
                   &out))
      << out;
  EXPECT_NE(std::string::npos, ReadAll("/proc/mounts").find(" " + mnt2 + " fuse.cfs "));
  std::string rel = dir_.substr(cluster_->mnt().size());
  ASSERT_TRUE(WriteAll(P("shared"), "from mount 1"));
  EXPECT_EQ("from mount 1", ReadAll(mnt2 + rel + "/shared"));
  // Close-to-open: a change made through mount 2 is seen by the next open on mount 1,
  // even though mount 1 has the file's pages and attributes cached.
  EXPECT_EQ("from mount 1", ReadAll(P("shared")));
  ASSERT_TRUE(WriteAll(mnt2 + rel + "/shared", "changed through mount 2, longer"));
  EXPECT_EQ("changed through mount 2, longer", ReadAll(P("shared")));
  EXPECT_EQ(0, cfs::test::Run("umount " + mnt2, &out)) << out;

  // mount -t cfs and an fstab line (mount -T FILE reads that instead of /etc/fstab);
  // mount(8) looks for its helper in /sbin.
  bool made_link = false;
  if (access("/sbin/mount.cfs", X_OK) != 0) {
    ASSERT_EQ(0, symlink(Bin("mount.cfs").c_str(), "/sbin/mount.cfs")) << strerror(errno);
    made_link = true;
  }
  int rc = cfs::test::Run("mount -t cfs " + cluster_->MetaAddr() + " " + mnt2, &out);
  EXPECT_EQ(0, rc) << out;
  if (rc == 0) {
    EXPECT_EQ("changed through mount 2, longer", ReadAll(mnt2 + rel + "/shared"));
    EXPECT_EQ(0, cfs::test::Run("umount " + mnt2, &out)) << out;
  }
  std::string fstab = cluster_->dir() + "/fstab";
  ASSERT_TRUE(WriteAll(fstab, cluster_->MetaAddr() + " " + mnt2 + " cfs defaults,_netdev 0 0\n"));
  rc = cfs::test::Run("mount -T " + fstab + " " + mnt2, &out);
  EXPECT_EQ(0, rc) << out;
  if (rc == 0) {
    EXPECT_EQ("changed through mount 2, longer", ReadAll(mnt2 + rel + "/shared"));
    EXPECT_EQ(0, cfs::test::Run("umount " + mnt2, &out)) << out;
  }
  if (made_link) unlink("/sbin/mount.cfs");
}

TEST_F(FuseOps, CommandLineErrors) {
  std::string out;
  EXPECT_EQ(0, cfs::test::Run(Bin("cfs-fuse") + " --help", &out));
  EXPECT_NE(std::string::npos, out.find("usage: cfs-fuse"));
  std::string mnt3 = cluster_->dir() + "/mnt3";
  ASSERT_EQ(0, mkdir(mnt3.c_str(), 0755));
  // Nothing listens on port 1: exit 1 (failure); bad arguments and options: exit 2 (usage).
  EXPECT_EQ(1, cfs::test::Run(Bin("cfs-fuse") + " 127.0.0.1:1 " + mnt3 + " -o timeout_ms=2000", &out));
  EXPECT_NE(std::string::npos, out.find("cannot reach M-worker at 127.0.0.1:1")) << out;
  EXPECT_EQ(2, cfs::test::Run(Bin("cfs-fuse") + " " + cluster_->MetaAddr() + " " + cluster_->dir() + "/nodir", &out));
  EXPECT_NE(std::string::npos, out.find("nodir")) << out;
  EXPECT_EQ(2, cfs::test::Run(Bin("cfs-fuse") + " " + cluster_->MetaAddr() + " " + mnt3 + " -o bogus_option", &out));
  EXPECT_NE(std::string::npos, out.find("bogus_option")) << out;
  EXPECT_EQ(2, cfs::test::Run(Bin("cfs-fuse") + " " + cluster_->MetaAddr() + " " + mnt3 + " -o readahead=x", &out));
  EXPECT_NE(std::string::npos, out.find("readahead")) << out;
  EXPECT_EQ(2, cfs::test::Run(Bin("cfs-fuse") + " " + cluster_->MetaAddr() + " " + mnt3 + " --frobnicate", &out));
  EXPECT_EQ(std::string::npos, ReadAll("/proc/mounts").find(mnt3));
  // SIGTERM unmounts cleanly (a foreground daemon we started, by pid).
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    std::string bin = Bin("cfs-fuse"), meta = cluster_->MetaAddr();
    execl(bin.c_str(), bin.c_str(), meta.c_str(), mnt3.c_str(), "-f", static_cast<char*>(nullptr));
    _exit(127);
  }
  bool up = false;
  for (int i = 0; i < 100 && !up; i++) {
    up = ReadAll("/proc/mounts").find(" " + mnt3 + " fuse.cfs ") != std::string::npos;
    if (!up) usleep(100000);
  }
  ASSERT_TRUE(up);
  ASSERT_TRUE(WriteAll(mnt3 + "/sigterm-test", "y"));
  ASSERT_EQ(0, kill(pid, SIGTERM));
  int st = 0;
  ASSERT_EQ(pid, waitpid(pid, &st, 0));
  EXPECT_TRUE(WIFEXITED(st)) << st;
  EXPECT_EQ(std::string::npos, ReadAll("/proc/mounts").find(" " + mnt3 + " "));
  if (ReadAll("/proc/mounts").find(" " + mnt3 + " ") != std::string::npos) cfs::test::Run("umount -l " + mnt3);
  // What was written through it is in the file system.
  EXPECT_EQ("y", ReadAll(cluster_->mnt() + "/sigterm-test"));
  unlink((cluster_->mnt() + "/sigterm-test").c_str());
}

}  // namespace
}  // namespace cfs::test
