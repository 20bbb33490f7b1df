// The C API end to end: libcfs.so (loaded with dlopen, so exactly the exported
// cfs_* symbols are used) against a real local cluster (`cfs local up`: 1
// cfs-meta, 6 cfs-storage, a FUSE mount). Data is checked by content, through
// the API and through the mount.
#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <thread>

#include "cfs/cfs.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

// The API, resolved from libcfs.so.
struct Api {
#define CFS_API_FN(name) decltype(&::name) name = nullptr;
  CFS_API_FN(cfs_version)
  CFS_API_FN(cfs_strerror)
  CFS_API_FN(cfs_mount)
  CFS_API_FN(cfs_unmount)
  CFS_API_FN(cfs_open)
  CFS_API_FN(cfs_close)
  CFS_API_FN(cfs_pread)
  CFS_API_FN(cfs_pwrite)
  CFS_API_FN(cfs_fsync)
  CFS_API_FN(cfs_fstat)
  CFS_API_FN(cfs_ftruncate)
  CFS_API_FN(cfs_stat)
  CFS_API_FN(cfs_mkdir)
  CFS_API_FN(cfs_rmdir)
  CFS_API_FN(cfs_unlink)
  CFS_API_FN(cfs_rename)
  CFS_API_FN(cfs_truncate)
  CFS_API_FN(cfs_readdir)
  CFS_API_FN(cfs_setstripe)
#undef CFS_API_FN
  void* handle = nullptr;
  std::string error;

  bool Load() {
    std::string lib = std::string(CFS_BIN_DIR) + "/../lib/libcfs.so";
    handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      error = dlerror();
      return false;
    }
#define CFS_LOAD(name)                                                      \
  name = reinterpret_cast<decltype(name)>(dlsym(handle, #name));            \
  if (!name) {                                                              \
    error = "missing symbol " #name;                                        \
    return false;                                                           \
  }
    CFS_LOAD(cfs_version) CFS_LOAD(cfs_strerror) CFS_LOAD(cfs_mount) CFS_LOAD(cfs_unmount)
    CFS_LOAD(cfs_open) CFS_LOAD(cfs_close) CFS_LOAD(cfs_pread) CFS_LOAD(cfs_pwrite)
    CFS_LOAD(cfs_fsync) CFS_LOAD(cfs_fstat) CFS_LOAD(cfs_ftruncate) CFS_LOAD(cfs_stat)
    CFS_LOAD(cfs_mkdir) CFS_LOAD(cfs_rmdir) CFS_LOAD(cfs_unlink) CFS_LOAD(cfs_rename)
    CFS_LOAD(cfs_truncate) CFS_LOAD(cfs_readdir) CFS_LOAD(cfs_setstripe)
#undef CFS_LOAD
    return true;
  }
};

Api api;
LocalCluster* cluster = nullptr;

class CapiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_TRUE(api.Load()) << api.error;
    cluster = new LocalCluster();
    std::string err = cluster->Up();
    ASSERT_EQ(err, "") << "cfs local up failed:\n" << err;
  }
  static void TearDownTestSuite() {
    delete cluster;
    cluster = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(cluster);
    ASSERT_EQ(api.cfs_mount(cluster->MetaAddr().c_str(), nullptr, &ctx_), 0);
  }
  void TearDown() override {
    if (ctx_) {
      EXPECT_EQ(api.cfs_unmount(ctx_), 0);
    }
  }

  // Writes FillPattern(seed) bytes [0, size) in chunks of varying size.
  void WritePattern(int fh, uint64_t size, uint64_t seed) {
    std::string buf(9 << 20, '\0');
    uint64_t off = 0;
    size_t sizes[] = {1 << 20, 4096, 7 << 20, 333333, 1 << 20, 6 << 20};
    for (int i = 0; off < size; i++) {
      size_t n = std::min<uint64_t>(sizes[i % 6], size - off);
      FillPattern(buf.data(), n, seed, off);
      ASSERT_EQ(api.cfs_pwrite(ctx_, fh, buf.data(), n, off), static_cast<int64_t>(n));
      off += n;
    }
  }
  // Reads [0, size) back in `chunk` reads and compares with FillPattern(seed).
  void CheckPattern(int fh, uint64_t size, uint64_t seed, size_t chunk) {
    std::string got(chunk, '\0'), want(chunk, '\0');
    for (uint64_t off = 0; off < size; off += chunk) {
      size_t n = std::min<uint64_t>(chunk, size - off);
      ASSERT_EQ(api.cfs_pread(ctx_, fh, got.data(), chunk, off), static_cast<int64_t>(n)) << off;
      FillPattern(want.data(), n, seed, off);
      ASSERT_EQ(std::memcmp(got.data(), want.data(), n), 0) << "mismatch in [" << off << ", +" << n << ")";
    }
    char c;
    EXPECT_EQ(api.cfs_pread(ctx_, fh, &c, 1, size), 0);
  }

  cfs_ctx* ctx_ = nullptr;
};

TEST_F(CapiTest, MultiStripeFileByteExactViaApiAndMount) {
  const uint64_t size = 4 * (6ull << 20) + (3 << 20) + 12345;  // 4+ stripes of 6 x 1 MiB
  int fh = api.cfs_open(ctx_, "/multi", O_CREAT | O_RDWR | O_EXCL, 0644, nullptr);
  ASSERT_GE(fh, 0) << api.cfs_strerror(fh);
  WritePattern(fh, size, 11);
  CheckPattern(fh, size, 11, 1 << 20);  // before close: this client's view
  struct cfs_stat st;
  ASSERT_EQ(api.cfs_fstat(ctx_, fh, &st), 0);
  EXPECT_EQ(st.size, size);
  EXPECT_EQ(st.layout.k, 6u);
  EXPECT_EQ(st.layout.unit, 1u << 20);
  ASSERT_EQ(api.cfs_fsync(ctx_, fh), 0);
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  // A fresh handle, odd-sized reads (read-ahead and direct reads).
  fh = api.cfs_open(ctx_, "/multi", O_RDONLY, 0, nullptr);
  ASSERT_GE(fh, 0);
  CheckPattern(fh, size, 11, 777777);
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  // The same bytes through the FUSE mount.
  EXPECT_EQ(CheckPatternFile(cluster->Path("multi"), size, 11), "");
  ASSERT_EQ(api.cfs_stat(ctx_, "/multi", &st), 0);
  EXPECT_EQ(st.size, size);
  EXPECT_TRUE(S_ISREG(st.mode));
}

TEST_F(CapiTest, FileWrittenThroughMountReadsViaApi) {
  const uint64_t size = (13 << 20) + 5;
  ASSERT_TRUE(WritePatternFile(cluster->Path("from_fuse"), size, 22));
  int fh = api.cfs_open(ctx_, "/from_fuse", O_RDONLY, 0, nullptr);
  ASSERT_GE(fh, 0) << api.cfs_strerror(fh);
  CheckPattern(fh, size, 22, 1 << 20);
  EXPECT_EQ(api.cfs_close(ctx_, fh), 0);
}

TEST_F(CapiTest, HandlesOfOneFileShareWrites) {
  int a = api.cfs_open(ctx_, "/shared", O_CREAT | O_RDWR, 0644, nullptr);
  int b = api.cfs_open(ctx_, "/shared", O_RDWR, 0, nullptr);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_NE(a, b);
  ASSERT_EQ(api.cfs_pwrite(ctx_, a, "abcdef", 6, 0), 6);  // buffered in the client
  char buf[8] = {};
  ASSERT_EQ(api.cfs_pread(ctx_, b, buf, 8, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "abcdef");
  EXPECT_EQ(api.cfs_close(ctx_, a), 0);
  ASSERT_EQ(api.cfs_pwrite(ctx_, b, "XY", 2, 2), 2);
  EXPECT_EQ(api.cfs_close(ctx_, b), 0);
  bool ok = false;
  std::string all;
  {
    std::string p = cluster->Path("shared");
    FILE* f = fopen(p.c_str(), "rb");
    ASSERT_TRUE(f);
    char tmp[64];
    size_t n = fread(tmp, 1, sizeof tmp, f);
    fclose(f);
    all.assign(tmp, n);
    ok = true;
  }
  EXPECT_TRUE(ok);
  EXPECT_EQ(all, "abXYef");
}

TEST_F(CapiTest, AppendTruncateAndHoles) {
  int fh = api.cfs_open(ctx_, "/app", O_CREAT | O_WRONLY | O_APPEND, 0600, nullptr);
  ASSERT_GE(fh, 0);
  ASSERT_EQ(api.cfs_pwrite(ctx_, fh, "one", 3, 999), 3);  // offset ignored with O_APPEND
  ASSERT_EQ(api.cfs_pwrite(ctx_, fh, "two", 3, 0), 3);
  char buf[16];
  EXPECT_EQ(api.cfs_pread(ctx_, fh, buf, 3, 0), -EBADF);  // write-only handle
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  struct cfs_stat st;
  ASSERT_EQ(api.cfs_stat(ctx_, "/app", &st), 0);
  EXPECT_EQ(st.size, 6u);
  // Extend with a hole across several units, then shrink.
  const uint64_t big = (6ull << 20) * 2 + 100;
  ASSERT_EQ(api.cfs_truncate(ctx_, "/app", big), 0);
  fh = api.cfs_open(ctx_, "/app", O_RDWR, 0, nullptr);
  ASSERT_GE(fh, 0);
  ASSERT_EQ(api.cfs_pread(ctx_, fh, buf, 6, 0), 6);
  EXPECT_EQ(std::string(buf, 6), "onetwo");
  std::string hole(3 << 20, 'x');
  ASSERT_EQ(api.cfs_pread(ctx_, fh, hole.data(), hole.size(), 7 << 20), static_cast<int64_t>(hole.size()));
  EXPECT_EQ(hole, std::string(hole.size(), '\0'));
  ASSERT_EQ(api.cfs_ftruncate(ctx_, fh, 4), 0);
  ASSERT_EQ(api.cfs_fstat(ctx_, fh, &st), 0);
  EXPECT_EQ(st.size, 4u);
  EXPECT_EQ(api.cfs_pread(ctx_, fh, buf, 16, 0), 4);
  ASSERT_EQ(api.cfs_ftruncate(ctx_, fh, 10), 0);  // bytes past the old end read zero
  EXPECT_EQ(api.cfs_pread(ctx_, fh, buf, 16, 0), 10);
  EXPECT_EQ(std::string(buf, 10), std::string("onet\0\0\0\0\0\0", 10));
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  // O_TRUNC empties it.
  fh = api.cfs_open(ctx_, "/app", O_WRONLY | O_TRUNC, 0, nullptr);
  ASSERT_GE(fh, 0);
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  ASSERT_EQ(api.cfs_stat(ctx_, "/app", &st), 0);
  EXPECT_EQ(st.size, 0u);
}

TEST_F(CapiTest, NamespaceCalls) {
  ASSERT_EQ(api.cfs_mkdir(ctx_, "/d", 0755), 0);
  EXPECT_EQ(api.cfs_mkdir(ctx_, "/d", 0755), -EEXIST);
  EXPECT_EQ(api.cfs_mkdir(ctx_, "/nope/d", 0755), -ENOENT);
  std::set<std::string> made;
  for (int i = 0; i < 40; i++) {
    std::string p = "/d/f" + std::to_string(i);
    int fh = api.cfs_open(ctx_, p.c_str(), O_CREAT | O_WRONLY, 0644, nullptr);
    ASSERT_GE(fh, 0) << p;
    ASSERT_EQ(api.cfs_pwrite(ctx_, fh, p.data(), p.size(), 0), static_cast<int64_t>(p.size()));
    ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
    made.insert("f" + std::to_string(i));
  }
  ASSERT_EQ(api.cfs_mkdir(ctx_, "/d/sub", 0700), 0);
  made.insert("sub");
  // readdir in small batches resumes by cookie.
  std::set<std::string> seen;
  uint64_t cookie = 0;
  cfs_dirent ents[7];
  int n, rounds = 0;
  while ((n = api.cfs_readdir(ctx_, "/d", &cookie, ents, 7)) > 0) {
    for (int i = 0; i < n; i++) {
      EXPECT_TRUE(seen.insert(ents[i].name).second) << "twice: " << ents[i].name;
      EXPECT_EQ(ents[i].type, std::string(ents[i].name) == "sub" ? 4u : 8u);
    }
    ASSERT_LT(++rounds, 100);
  }
  EXPECT_EQ(n, 0);
  EXPECT_EQ(seen, made);
  // The mount sees the same names.
  auto names = ListDir(cluster->Path("d"));
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()), made);
  // rename, including replacing an existing file.
  ASSERT_EQ(api.cfs_rename(ctx_, "/d/f1", "/d/sub/moved"), 0);
  ASSERT_EQ(api.cfs_rename(ctx_, "/d/f2", "/d/f3"), 0);
  struct cfs_stat st;
  EXPECT_EQ(api.cfs_stat(ctx_, "/d/f1", &st), -ENOENT);
  ASSERT_EQ(api.cfs_stat(ctx_, "/d/sub/moved", &st), 0);
  EXPECT_EQ(st.size, 5u);  // "/d/f1"
  ASSERT_EQ(api.cfs_stat(ctx_, "/d/f3", &st), 0);
  EXPECT_EQ(st.size, 5u);  // the old f2's content
  int fh = api.cfs_open(ctx_, "/d/f3", O_RDONLY, 0, nullptr);
  char buf[8];
  ASSERT_EQ(api.cfs_pread(ctx_, fh, buf, 8, 0), 5);
  EXPECT_EQ(std::string(buf, 5), "/d/f2");
  api.cfs_close(ctx_, fh);
  // unlink, rmdir.
  EXPECT_EQ(api.cfs_rmdir(ctx_, "/d/sub"), -ENOTEMPTY);
  ASSERT_EQ(api.cfs_unlink(ctx_, "/d/sub/moved"), 0);
  EXPECT_EQ(api.cfs_unlink(ctx_, "/d/sub/moved"), -ENOENT);
  ASSERT_EQ(api.cfs_rmdir(ctx_, "/d/sub"), 0);
  EXPECT_EQ(api.cfs_unlink(ctx_, "/d"), -EISDIR);
  EXPECT_EQ(api.cfs_stat(ctx_, "/d/sub", &st), -ENOENT);
  EXPECT_EQ(api.cfs_stat(ctx_, "/d/f3/x", &st), -ENOTDIR);
  EXPECT_EQ(api.cfs_readdir(ctx_, "/d/f3", &cookie, ents, 7), -ENOTDIR);
  ASSERT_EQ(api.cfs_stat(ctx_, "/", &st), 0);
  EXPECT_TRUE(S_ISDIR(st.mode));
  EXPECT_EQ(st.ino, 1u);
}

TEST_F(CapiTest, SetstripeGivesNewFilesTheLayout) {
  ASSERT_EQ(api.cfs_mkdir(ctx_, "/narrow", 0755), 0);
  cfs_layout l{65536, 2, 0};
  ASSERT_EQ(api.cfs_setstripe(ctx_, "/narrow", &l), 0);
  int fh = api.cfs_open(ctx_, "/narrow/f", O_CREAT | O_RDWR, 0644, nullptr);
  ASSERT_GE(fh, 0);
  struct cfs_stat st;
  ASSERT_EQ(api.cfs_fstat(ctx_, fh, &st), 0);
  EXPECT_EQ(st.layout.unit, 65536u);
  EXPECT_EQ(st.layout.k, 2u);
  const uint64_t size = (1 << 20) + 3;
  WritePattern(fh, size, 5);
  CheckPattern(fh, size, 5, 100000);
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  EXPECT_EQ(CheckPatternFile(cluster->Path("narrow/f"), size, 5), "");
  // An explicit hint at create time wins.
  cfs_layout h{1 << 20, 3, 0};
  fh = api.cfs_open(ctx_, "/narrow/g", O_CREAT | O_RDWR, 0644, &h);
  ASSERT_GE(fh, 0);
  ASSERT_EQ(api.cfs_fstat(ctx_, fh, &st), 0);
  EXPECT_EQ(st.layout.k, 3u);
  EXPECT_EQ(st.layout.unit, 1u << 20);
  api.cfs_close(ctx_, fh);
}

TEST_F(CapiTest, BadInputGetsClearErrors) {
  char buf[4];
  EXPECT_EQ(api.cfs_pread(ctx_, 12345, buf, 4, 0), -EBADF);
  EXPECT_EQ(api.cfs_pwrite(ctx_, -1, buf, 4, 0), -EBADF);
  EXPECT_EQ(api.cfs_close(ctx_, 99), -EBADF);
  EXPECT_EQ(api.cfs_fsync(ctx_, 99), -EBADF);
  struct cfs_stat st;
  EXPECT_EQ(api.cfs_fstat(ctx_, 99, &st), -EBADF);
  int fh = api.cfs_open(ctx_, "/ro", O_CREAT | O_RDONLY, 0644, nullptr);
  ASSERT_GE(fh, 0);
  EXPECT_EQ(api.cfs_pwrite(ctx_, fh, "x", 1, 0), -EBADF);
  EXPECT_EQ(api.cfs_close(ctx_, fh), 0);
  EXPECT_EQ(api.cfs_close(ctx_, fh), -EBADF);  // twice
  EXPECT_EQ(api.cfs_open(ctx_, "/ro", O_CREAT | O_EXCL | O_RDWR, 0644, nullptr), -EEXIST);
  EXPECT_EQ(api.cfs_open(ctx_, "/missing", O_RDONLY, 0, nullptr), -ENOENT);
  EXPECT_EQ(api.cfs_open(ctx_, "/", O_RDONLY, 0, nullptr), -EISDIR);
  EXPECT_EQ(api.cfs_open(ctx_, "relative", O_RDONLY, 0, nullptr), -EINVAL);
  EXPECT_EQ(api.cfs_open(ctx_, ("/" + std::string(300, 'n')).c_str(), O_CREAT | O_RDWR, 0644, nullptr),
            -ENAMETOOLONG);
  cfs_layout parity{1 << 20, 4, 5};  // m is at most 4
  EXPECT_EQ(api.cfs_open(ctx_, "/par", O_CREAT | O_RDWR, 0644, &parity), -EINVAL);
  cfs_layout badunit{1000, 2, 0};
  EXPECT_EQ(api.cfs_open(ctx_, "/bu", O_CREAT | O_RDWR, 0644, &badunit), -EINVAL);
  EXPECT_EQ(api.cfs_stat(ctx_, nullptr, &st), -EINVAL);
  cfs_ctx* other = nullptr;
  EXPECT_EQ(api.cfs_mount(cluster->MetaAddr().c_str(), "colour=blue", &other), -EINVAL);
  EXPECT_EQ(api.cfs_mount("127.0.0.1:1", nullptr, &other), -EHOSTUNREACH);
  EXPECT_EQ(api.cfs_mount("no-port", nullptr, &other), -EINVAL);
  EXPECT_STREQ(api.cfs_strerror(-ENOENT), "No such file or directory");
  EXPECT_STREQ(api.cfs_version(), "0.2.0");
}

TEST_F(CapiTest, SecondContextSeesDataAfterClose) {
  cfs_ctx* other = nullptr;
  ASSERT_EQ(api.cfs_mount(cluster->MetaAddr().c_str(), "readahead=4,timeout_ms=20000", &other), 0);
  int fh = api.cfs_open(ctx_, "/c2o", O_CREAT | O_RDWR, 0644, nullptr);
  ASSERT_GE(fh, 0);
  const uint64_t size = (7 << 20) + 1;
  WritePattern(fh, size, 9);
  ASSERT_EQ(api.cfs_close(ctx_, fh), 0);
  std::swap(ctx_, other);
  fh = api.cfs_open(ctx_, "/c2o", O_RDONLY, 0, nullptr);
  ASSERT_GE(fh, 0);
  CheckPattern(fh, size, 9, 1 << 20);
  // Left open: unmount closes it.
  std::swap(ctx_, other);
  EXPECT_EQ(api.cfs_unmount(other), 0);
}

}  // namespace
}  // namespace cfs::test
