// Four concurrent writers through one FUSE mount: (1) each to its own file,
// (2) to disjoint contiguous regions of one shared file, (3) to interleaved
// chunks of one shared file, so that writers share units and stripes. Every
// byte is checked after the page cache is dropped.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr int kWriters = 4;
constexpr uint64_t kMiB = 1ull << 20;

class ConcurrentWritersTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    cluster_ = new LocalCluster();
    std::string err = cluster_->Up();
    if (!err.empty()) {
      up_error_ = new std::string(err);
    }
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  void SetUp() override {
    if (up_error_) GTEST_FAIL() << *up_error_;
  }
  static LocalCluster* cluster_;
  static std::string* up_error_;
};
LocalCluster* ConcurrentWritersTest::cluster_ = nullptr;
std::string* ConcurrentWritersTest::up_error_ = nullptr;

// Writes [begin, end) of a file that as a whole is FillPattern(seed), in
// `chunk` pieces with pwrite on its own fd; returns "" or what failed.
std::string WriteRange(const std::string& path, uint64_t begin, uint64_t end, uint64_t seed,
                       size_t chunk) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd < 0) return "open " + path + ": " + strerror(errno);
  std::string buf(chunk, '\0');
  for (uint64_t off = begin; off < end;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, end - off));
    FillPattern(buf.data(), n, seed, off);
    ssize_t w = pwrite(fd, buf.data(), n, static_cast<off_t>(off));
    if (w != static_cast<ssize_t>(n)) {
      std::string e = "pwrite at " + std::to_string(off) + ": " + strerror(errno);
      close(fd);
      return e;
    }
    off += n;
  }
  if (fsync(fd) != 0) {
    std::string e = std::string("fsync: ") + strerror(errno);
    close(fd);
    return e;
  }
  if (close(fd) != 0) return std::string("close: ") + strerror(errno);
  return "";
}

TEST_F(ConcurrentWritersTest, FourWritersFourFiles) {
  const uint64_t size = 48 * kMiB + 4321;
  const size_t chunks[kWriters] = {4096 * 3, 128 * 1024, kMiB, 5 * kMiB + 17};
  std::vector<std::string> errs(kWriters);
  std::vector<std::thread> ts;
  for (int i = 0; i < kWriters; i++)
    ts.emplace_back([&, i] {
      errs[i] = WriteRange(cluster_->Path("own-" + std::to_string(i)), 0, size, 100 + i, chunks[i]);
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kWriters; i++) ASSERT_EQ(errs[i], "") << "writer " << i;

  ASSERT_EQ(DropCaches(), "");
  // Read back concurrently too.
  std::vector<std::string> bad(kWriters);
  ts.clear();
  for (int i = 0; i < kWriters; i++)
    ts.emplace_back([&, i] {
      bad[i] = CheckPatternFile(cluster_->Path("own-" + std::to_string(i)), size, 100 + i);
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kWriters; i++) EXPECT_EQ(bad[i], "") << "file of writer " << i;
}

TEST_F(ConcurrentWritersTest, FourWritersDisjointRegionsOfOneFile) {
  // Regions not aligned to units or stripes: neighbours share a unit.
  const uint64_t region = 16 * kMiB + 4097;
  const uint64_t size = kWriters * region;
  const std::string path = cluster_->Path("shared-regions");
  ASSERT_TRUE(WriteFileStr(path, ""));
  std::vector<std::string> errs(kWriters);
  std::vector<std::thread> ts;
  for (int i = 0; i < kWriters; i++)
    ts.emplace_back([&, i] {
      // The last writer goes backwards in big chunks, the others forwards.
      errs[i] = WriteRange(path, i * region, (i + 1) * region, 777, i == 3 ? 3 * kMiB : 256 * 1024 + i);
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kWriters; i++) ASSERT_EQ(errs[i], "") << "writer " << i;

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(path, size, 777), "");
}

TEST_F(ConcurrentWritersTest, FourWritersInterleavedChunksOfOneFile) {
  // Writer i writes chunks c with c % 4 == i; a chunk is 64 KiB + 100 bytes,
  // so every unit and stripe gets bytes from several writers at once.
  const size_t chunk = 64 * 1024 + 100;
  const uint64_t nchunks = 800;
  const uint64_t size = nchunks * chunk;
  const std::string path = cluster_->Path("shared-interleaved");
  ASSERT_TRUE(WriteFileStr(path, ""));
  std::vector<std::string> errs(kWriters);
  std::vector<std::thread> ts;
  for (int i = 0; i < kWriters; i++)
    ts.emplace_back([&, i] {
      int fd = open(path.c_str(), O_WRONLY);
      if (fd < 0) {
        errs[i] = std::string("open: ") + strerror(errno);
        return;
      }
      std::string buf(chunk, '\0');
      for (uint64_t c = i; c < nchunks; c += kWriters) {
        FillPattern(buf.data(), chunk, 4242, c * chunk);
        if (pwrite(fd, buf.data(), chunk, static_cast<off_t>(c * chunk)) != static_cast<ssize_t>(chunk)) {
          errs[i] = "pwrite chunk " + std::to_string(c) + ": " + strerror(errno);
          break;
        }
      }
      if (errs[i].empty() && fsync(fd) != 0) errs[i] = std::string("fsync: ") + strerror(errno);
      if (close(fd) != 0 && errs[i].empty()) errs[i] = std::string("close: ") + strerror(errno);
    });
  for (auto& t : ts) t.join();
  for (int i = 0; i < kWriters; i++) ASSERT_EQ(errs[i], "") << "writer " << i;

  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), size);
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(path, size, 4242), "");
}

}  // namespace
}  // namespace cfs::test
