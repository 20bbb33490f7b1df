// cfs-fuse stops promptly on SIGTERM even when the M-worker is gone and FUSE
// requests are in flight: the requests give up instead of retrying, and the
// session loop does not wait out their retries (`cfs local down` would
// otherwise SIGKILL it after 10 s). What was written before stays readable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

// Starts 20 creates in the mount that will hang in retries (not waited for).
void StartStuckCreates(const LocalCluster& c) {
  Run("for i in $(seq 20); do touch " + c.mnt() + "/stuck$i >/dev/null 2>&1 & done");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // let them reach cfs-fuse
}

// Runs `cfs local down`; returns its duration in seconds, output in *out.
double TimedDown(const LocalCluster& c, std::string* out) {
  auto t0 = std::chrono::steady_clock::now();
  int rc = Run(Bin("cfs") + " local down --dir " + c.dir(), out);
  EXPECT_EQ(rc, 0) << *out;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(FuseStopTest, SigtermWithDeadMetaWorkerAndRequestsInFlight) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  ASSERT_TRUE(WritePatternFile(c.Path("before.bin"), 7 * kMiB + 3, 11));
  LocalCluster::KillAndWait(c.MetaPid(), SIGKILL);
  StartStuckCreates(c);
  std::string out;
  double secs = TimedDown(c, &out);
  printf("cfs local down took %.2f s\n", secs);
  EXPECT_EQ(out.find("did not stop"), std::string::npos) << out;
  EXPECT_LT(secs, 5.0) << out;
  // The data written before is all there.
  ASSERT_EQ(c.Up(), "");
  EXPECT_EQ(CheckPatternFile(c.Path("before.bin"), 7 * kMiB + 3, 11), "");
}

// A file still open with buffered writes when the M-worker goes: the exit
// flush may wait a little for it, still well under the launcher's 10 s. The
// file is held by a shell of its own: every close() of a descriptor of it (in
// any process a fork made) is a FUSE flush that waits on the M-worker.
TEST(FuseStopTest, SigtermWithDeadMetaWorkerAndDirtyOpenFile) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  const std::string pidfile = c.dir() + "/holder.pid";
  cfs::test::Run("sh -c 'echo $$ > " + pidfile + "; exec 1>" + c.Path("open.bin") +
      "; printf %3000000s x; exec sleep 120' </dev/null >/dev/null 2>&1 &");
  for (int i = 0; i < 100 && ReadFileStr(c.Path("open.bin")).size() < 3000000; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  pid_t holder = atoi(ReadFileStr(pidfile).c_str());
  ASSERT_GT(holder, 0);
  LocalCluster::KillAndWait(c.MetaPid(), SIGKILL);
  StartStuckCreates(c);
  std::string out;
  double secs = TimedDown(c, &out);
  printf("cfs local down took %.2f s\n", secs);
  kill(holder, SIGKILL);
  EXPECT_EQ(out.find("did not stop"), std::string::npos) << out;
  EXPECT_LT(secs, 8.0) << out;
}

// With the M-worker alive, SIGTERM still flushes a file left open: nothing
// acknowledged is lost.
TEST(FuseStopTest, SigtermFlushesOpenFile) {
  LocalCluster c;
  ASSERT_EQ(c.Up(), "");
  int fd = open(c.Path("open.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0);
  const size_t size = 3 * kMiB + 17;
  std::string buf(size, '\0');
  FillPattern(buf.data(), size, 13);
  ASSERT_EQ(write(fd, buf.data(), size), static_cast<ssize_t>(size));
  std::string out;
  double secs = TimedDown(c, &out);
  printf("cfs local down took %.2f s\n", secs);
  close(fd);
  EXPECT_EQ(out.find("did not stop"), std::string::npos) << out;
  ASSERT_EQ(c.Up(), "");
  EXPECT_EQ(CheckPatternFile(c.Path("open.bin"), size, 13), "");
}

}  // namespace
}  // namespace cfs::test
