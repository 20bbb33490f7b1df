// A 1 GiB file written through the FUSE mount of a 6-worker cluster and read
// back byte-exact after the page cache is dropped (so the bytes really come
// from the S-workers), plus reads that straddle unit and stripe boundaries.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kGiB = 1ull << 30;
constexpr uint64_t kMiB = 1ull << 20;

double Secs(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(LargeFileTest, OneGiBWrittenAndReadBackByteExact) {
  LocalCluster c;  // 6 workers, 6+0, 1 MiB units: a stripe is 6 MiB
  ASSERT_EQ(c.Up(), "");
  const std::string path = c.Path("big.bin");
  const uint64_t seed = 0x1a2b3c;

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(WritePatternFile(path, kGiB, seed, kMiB)) << "write failed: " << strerror(errno);
  printf("wrote 1 GiB in %.1f s\n", Secs(t0));

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kGiB);
  EXPECT_TRUE(S_ISREG(st.st_mode));

  ASSERT_EQ(DropCaches(), "");
  t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(CheckPatternFile(path, kGiB, seed, kMiB), "");
  printf("read 1 GiB in %.1f s\n", Secs(t0));

  // Small reads at awkward places: across unit (1 MiB) and stripe (6 MiB)
  // boundaries, the last bytes, and past EOF.
  ASSERT_EQ(DropCaches(), "");
  int fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  const uint64_t offsets[] = {0, kMiB - 3, 6 * kMiB - 5, 6 * kMiB, 97 * kMiB + 12345,
                              512 * kMiB - 1, kGiB - 6 * kMiB - 2, kGiB - 7};
  for (uint64_t off : offsets) {
    char got[4096], want[4096];
    size_t n = static_cast<size_t>(std::min<uint64_t>(sizeof got, kGiB - off));
    ssize_t r = pread(fd, got, sizeof got, static_cast<off_t>(off));
    ASSERT_EQ(r, static_cast<ssize_t>(n)) << "pread at " << off << ": " << strerror(errno);
    FillPattern(want, n, seed, off);
    EXPECT_EQ(memcmp(got, want, n), 0) << "content differs in 4 KiB read at " << off;
  }
  char b;
  EXPECT_EQ(pread(fd, &b, 1, static_cast<off_t>(kGiB)), 0) << "read at EOF returns 0 bytes";
  close(fd);

  // Overwrite 3 MiB in the middle (crossing a stripe boundary) with another
  // pattern and check both the new bytes and their neighbours.
  const uint64_t ow_off = 600 * kMiB - 1000, ow_len = 3 * kMiB;
  {
    std::string buf(ow_len, '\0');
    FillPattern(buf.data(), ow_len, seed + 1, ow_off);
    int wfd = open(path.c_str(), O_WRONLY);
    ASSERT_GE(wfd, 0);
    ASSERT_EQ(pwrite(wfd, buf.data(), ow_len, static_cast<off_t>(ow_off)),
              static_cast<ssize_t>(ow_len));
    ASSERT_EQ(fsync(wfd), 0);
    ASSERT_EQ(close(wfd), 0);
  }
  ASSERT_EQ(DropCaches(), "");
  fd = open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::string got(ow_len + 2 * kMiB, '\0'), want(ow_len + 2 * kMiB, '\0');
  ASSERT_EQ(pread(fd, got.data(), got.size(), static_cast<off_t>(ow_off - kMiB)),
            static_cast<ssize_t>(got.size()));
  close(fd);
  FillPattern(want.data(), kMiB, seed, ow_off - kMiB);
  FillPattern(want.data() + kMiB, ow_len, seed + 1, ow_off);
  FillPattern(want.data() + kMiB + ow_len, kMiB, seed, ow_off + ow_len);
  EXPECT_TRUE(got == want) << "overwrite in the middle of the 1 GiB file is not byte-exact";
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), kGiB) << "an overwrite must not change the size";
}

}  // namespace
}  // namespace cfs::test
