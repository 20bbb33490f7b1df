// Other users on the mount: allow_other lets them in, default_permissions makes
// the kernel check mode/uid/gid as cfs-fuse reports them, and what they create
// is theirs. Runs as root and forks children that become nobody (65534).
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "integration/cluster_fixture.h"

namespace cfs::test {
namespace {

constexpr uid_t kNobody = 65534;

// Runs fn in a child running as uid/gid 65534; returns what fn reported ("" = all good).
std::string AsNobody(const std::function<std::string()>& fn) {
  int p[2];
  if (pipe(p) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid < 0) return "fork failed";
  if (pid == 0) {
    close(p[0]);
    std::string r;
    if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0)
      r = std::string("cannot become nobody: ") + strerror(errno);
    else
      r = fn();
    if (write(p[1], r.data(), r.size()) < 0) _exit(2);
    _exit(0);
  }
  close(p[1]);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(p[0], buf, sizeof buf)) > 0) out.append(buf, n);
  close(p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out += " (child died)";
  return out;
}

// Checks inside the child: returns a description of the first surprise.
std::string ExpectErrno(int rc, int want_errno, const std::string& what) {
  if (rc >= 0) return what + ": succeeded, expected " + strerror(want_errno) + "\n";
  if (errno != want_errno)
    return what + ": " + strerror(errno) + ", expected " + strerror(want_errno) + "\n";
  return "";
}
std::string ExpectOk(int rc, const std::string& what) {
  return rc >= 0 ? "" : what + ": " + strerror(errno) + "\n";
}

class FusePermissions : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster();
    std::string err = cluster_->Up();
    if (!err.empty()) setup_error_ = new std::string(err);
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (getuid() != 0) GTEST_SKIP() << "needs root to switch users";
    if (setup_error_) GTEST_FAIL() << *setup_error_;
    // The test dir must be reachable by nobody (mkdtemp makes it 0700).
    chmod(cluster_->dir().c_str(), 0755);
  }
  static std::string P(const std::string& rel) { return cluster_->Path(rel); }

  static LocalCluster* cluster_;
  static std::string* setup_error_;
};
LocalCluster* FusePermissions::cluster_ = nullptr;
std::string* FusePermissions::setup_error_ = nullptr;

TEST_F(FusePermissions, KernelChecksModesForOtherUsers) {
  // Root's objects.
  ASSERT_EQ(0, chmod(cluster_->mnt().c_str(), 0755));
  ASSERT_EQ(0, mkdir(P("private").c_str(), 0700));
  {
    std::ofstream(P("private/secret")) << "s";
    std::ofstream(P("rootfile")) << "root data";
  }
  ASSERT_EQ(0, chmod(P("rootfile").c_str(), 0644));
  ASSERT_EQ(0, mkdir(P("open").c_str(), 0777));
  ASSERT_EQ(0, chmod(P("open").c_str(), 0777));  // beat the umask
  ASSERT_EQ(0, mkdir(P("sticky").c_str(), 01777));
  ASSERT_EQ(0, chmod(P("sticky").c_str(), 01777));
  { std::ofstream(P("sticky/roots")) << "r"; }

  std::string r = AsNobody([] {
    std::string e;
    e += ExpectErrno(open(P("private/secret").c_str(), O_RDONLY), EACCES, "open in 0700 dir");
    e += ExpectErrno(open(P("private/new").c_str(), O_CREAT | O_WRONLY, 0644), EACCES,
                     "create in 0700 dir");
    struct stat st;
    e += ExpectErrno(stat(P("private/secret").c_str(), &st), EACCES, "stat in 0700 dir");
    e += ExpectErrno(open(P("private").c_str(), O_RDONLY | O_DIRECTORY), EACCES, "opendir 0700");
    e += ExpectErrno(open(P("rootfile").c_str(), O_WRONLY), EACCES, "write root's 0644 file");
    e += ExpectErrno(truncate(P("rootfile").c_str(), 0), EACCES, "truncate root's 0644 file");
    e += ExpectErrno(chmod(P("rootfile").c_str(), 0666), EPERM, "chmod root's file");
    e += ExpectErrno(chown(P("rootfile").c_str(), kNobody, kNobody), EPERM, "chown root's file");
    e += ExpectErrno(unlink(P("rootfile").c_str()), EACCES, "unlink in root's 0755 dir");
    e += ExpectErrno(mkdir(P("nobodys").c_str(), 0755), EACCES, "mkdir in root's 0755 dir");
    e += ExpectErrno(unlink(P("sticky/roots").c_str()), EPERM, "unlink root's file in sticky dir");
    // Reading root's 0644 file is fine.
    int fd = open(P("rootfile").c_str(), O_RDONLY);
    e += ExpectOk(fd, "read root's 0644 file");
    if (fd >= 0) {
      char buf[32];
      ssize_t n = read(fd, buf, sizeof buf);
      if (n != 9 || std::string(buf, 9) != "root data") e += "root's file content differs\n";
      close(fd);
    }
    // In the 0777 directory nobody creates, writes, reads, and owns.
    fd = open(P("open/mine").c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
    e += ExpectOk(fd, "create in 0777 dir");
    if (fd >= 0) {
      if (write(fd, "nobody was here", 15) != 15) e += "write own file failed\n";
      if (fstat(fd, &st) != 0 || st.st_uid != kNobody || st.st_gid != kNobody)
        e += "new file not owned by 65534:65534 (" + std::to_string(st.st_uid) + ":" +
             std::to_string(st.st_gid) + ")\n";
      close(fd);
    }
    e += ExpectOk(mkdir(P("open/mydir").c_str(), 0700), "mkdir in 0777 dir");
    e += ExpectOk(symlink("mine", P("open/mylink").c_str()), "symlink in 0777 dir");
    e += ExpectOk(chmod(P("open/mine").c_str(), 0640), "chmod own file");
    e += ExpectOk(open(P("open/mydir/deeper").c_str(), O_CREAT | O_WRONLY, 0644), "create in own dir");
    fd = open(P("sticky/nobodys").c_str(), O_CREAT | O_WRONLY, 0644);
    e += ExpectOk(fd, "create in sticky 01777 dir");
    if (fd >= 0) close(fd);
    e += ExpectOk(unlink(P("sticky/nobodys").c_str()), "unlink own file in sticky dir");
    return e;
  });
  EXPECT_EQ("", r);

  // As root again: ownership and modes are stored, not just cached.
  struct stat st;
  ASSERT_EQ(0, stat(P("open/mine").c_str(), &st));
  EXPECT_EQ(kNobody, st.st_uid);
  EXPECT_EQ(kNobody, st.st_gid);
  EXPECT_EQ(0640u, st.st_mode & 07777);
  ASSERT_EQ(0, stat(P("open/mydir").c_str(), &st));
  EXPECT_EQ(kNobody, st.st_uid);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(0, lstat(P("open/mylink").c_str(), &st));
  EXPECT_EQ(kNobody, st.st_uid);
  ASSERT_EQ(0, stat(P("open/mydir/deeper").c_str(), &st));
  EXPECT_EQ(kNobody, st.st_uid);
  std::ifstream f(P("open/mine"));
  std::string content((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ("nobody was here", content);
  ASSERT_EQ(0, stat(P("rootfile").c_str(), &st));
  EXPECT_EQ(0644u, st.st_mode & 07777);
  EXPECT_EQ(0u, st.st_uid);

  // Root may enter nobody's 0700 directory, and chown gives the file away.
  EXPECT_EQ(0, access(P("open/mydir/deeper").c_str(), W_OK));
  ASSERT_EQ(0, chown(P("rootfile").c_str(), kNobody, kNobody));
  r = AsNobody([] {
    std::string e;
    int fd = open(P("rootfile").c_str(), O_WRONLY | O_APPEND);
    e += ExpectOk(fd, "write a file chown'd to nobody");
    if (fd >= 0) {
      if (write(fd, "!", 1) != 1) e += "append failed\n";
      close(fd);
    }
    return e;
  });
  EXPECT_EQ("", r);
}

TEST_F(FusePermissions, GroupAndOtherBits) {
  { std::ofstream(P("g")) << "grp"; }
  ASSERT_EQ(0, chown(P("g").c_str(), 0, kNobody));
  ASSERT_EQ(0, chmod(P("g").c_str(), 0060));  // group rw only
  { std::ofstream(P("o")) << "oth"; }
  ASSERT_EQ(0, chmod(P("o").c_str(), 0600));  // others nothing
  std::string r = AsNobody([] {
    std::string e;
    int fd = open(P("g").c_str(), O_RDWR);
    e += ExpectOk(fd, "group rw file");
    if (fd >= 0) close(fd);
    e += ExpectErrno(open(P("o").c_str(), O_RDONLY), EACCES, "read 0600 root file");
    e += ExpectOk(access(P("g").c_str(), R_OK | W_OK), "access group rw");
    e += ExpectErrno(access(P("o").c_str(), R_OK), EACCES, "access 0600 root file");
    return e;
  });
  EXPECT_EQ("", r);
}

}  // namespace
}  // namespace cfs::test
