// LocalCluster: a real CFS cluster for integration tests, started with the
// `cfs local` launcher exactly as a user would (1 cfs-meta, N cfs-storage on
// loopback, a FUSE mount), with all state in a fresh temporary directory.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace cfs::test {

// Path of a built binary (BUILD/bin/NAME).
std::string Bin(const std::string& name);
// Runs a shell command; returns its exit status and captures stdout+stderr.
int Run(const std::string& cmd, std::string* output = nullptr);
// xxh3-64 of a whole file's content (0 and errno set if unreadable).
uint64_t FileHash(const std::string& path);
// " --transport X --bind Y" for `cfs local up` from CFS_TEST_TRANSPORT and
// CFS_TEST_BIND (the bind address defaults to CFS_RDMA_ADDR for a transport
// other than tcp): how the rdma-labelled runs in the Soft-RoCE guest put a
// cluster on RDMA. "" when unset: TCP on 127.0.0.1.
std::string TestTransportArgs();
// Deterministic pseudo-random bytes from a seed (for content checks).
void FillPattern(void* buf, size_t len, uint64_t seed, uint64_t offset = 0);
// Writes `size` bytes of FillPattern(seed) to path in `chunk` sized writes; true on success.
bool WritePatternFile(const std::string& path, uint64_t size, uint64_t seed, size_t chunk = 1 << 20);
// Reads path back and compares with FillPattern(seed); returns "" or a description of the first mismatch.
std::string CheckPatternFile(const std::string& path, uint64_t size, uint64_t seed, size_t chunk = 1 << 20);

struct ClusterOptions {
  int workers = 6;
  std::string stripe = "6+0";  // K+M passed to --stripe
  std::string unit = "1M";     // passed to --unit
  std::vector<std::string> extra_args;
};

class LocalCluster {
 public:
  explicit LocalCluster(ClusterOptions opts = {});
  ~LocalCluster();  // Down() and removes the directory
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  // `cfs local up`; returns "" on success or the launcher's output on failure.
  std::string Up();
  // `cfs local down`; returns "" or the output on failure.
  std::string Down();
  // `cfs local start-worker I`.
  std::string StartWorker(int i);

  const std::string& dir() const { return dir_; }
  const std::string& mnt() const { return mnt_; }
  std::string Path(const std::string& rel) const { return mnt_ + "/" + rel; }
  // Contents of DIR/run/meta.addr ("127.0.0.1:PORT").
  std::string MetaAddr() const;
  pid_t MetaPid() const;
  pid_t WorkerPid(int i) const;
  // Sends sig to the process and waits until it is gone.
  static void KillAndWait(pid_t pid, int sig);
  // Runs `cfs ARGS --cluster META` and returns exit status, output in *out.
  int Cfs(const std::string& args, std::string* out) const;
  const ClusterOptions& options() const { return opts_; }

 private:
  ClusterOptions opts_;
  std::string dir_, mnt_;
  bool up_ = false;
};

}  // namespace cfs::test
