// The local cluster launcher behind `cfs local`: one cfs-meta and N
// cfs-storage on one address (--bind, default 127.0.0.1) with all state under
// DIR, plus a cfs-fuse mount. --transport picks the data path (tcp|rdma|auto)
// of the S-workers and the mount; the M-worker always serves TCP.
// The daemons are detached (own session, output to DIR/log) and outlive the
// launcher; DIR/run holds their pid files and DIR/cluster.json the settings.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "local_config.h"

namespace cfs::tools {

struct UpFlags {
  std::string dir, mount;
  int workers = 6;
  bool workers_given = false;
  std::string stripe, unit, transport, fuse_options, log_level;  // "" = not given
  std::string bind, rdma_device;                                 // "" = not given
  // cfs-meta settings; -1 / "" = not given (kept from cluster.json, else cfs-meta's default).
  int64_t heartbeat_timeout_ms = -1, rebuild_after_s = -1, scrub_interval_s = -1;
  std::string rebuild_rate;
};

class LocalLauncher {
 public:
  LocalLauncher(std::string dir, std::chrono::seconds timeout);

  // Each returns a process exit code and prints what it did or why it failed.
  int Up(const UpFlags& flags);
  int Down();
  int StartWorker(int index);
  int ShowStatus(bool json);

 private:
  // Settings for `up`: from cluster.json, checked against the flags, or new.
  int Configure(const UpFlags& flags, LocalConfig* cfg);
  Status EnsureDirs(const LocalConfig& cfg);
  // Before any daemon starts: --transport rdma needs usable RDMA and a
  // non-loopback --bind. Returns an exit code (kExitOk: go on).
  int CheckTransport(const LocalConfig& cfg);
  // What a client of cfg.transport reaches each S-worker over; fails when
  // --transport rdma reaches one over nothing. Prints one line.
  Status ReportDataPaths(const LocalConfig& cfg);
  Result<pid_t> SpawnMeta(const LocalConfig& cfg);
  Result<pid_t> SpawnWorker(const LocalConfig& cfg, int i);
  Result<pid_t> SpawnFuse(const LocalConfig& cfg);
  // Waits for GET_STATUS to answer; fails early if pid dies.
  Status WaitMeta(const LocalConfig& cfg, pid_t pid);
  // Waits until worker i (by port) is registered and up, for every i in
  // `which`; spawned[i] (if non-zero) is when it was started: its registration
  // must be fresher than that.
  Status WaitWorkers(const LocalConfig& cfg, const std::vector<int>& which,
                     const std::vector<std::chrono::steady_clock::time_point>& spawned);
  // Waits for the mount to appear and serve a stat + create/remove of a probe file.
  Status WaitMount(const LocalConfig& cfg, pid_t fuse_pid);
  Status Unmount(const std::string& mnt);
  // Tail of a daemon's log, for failure messages.
  std::string LogTail(const std::string& log) const;

  // Where each log ended when this run started its daemon: failure reports
  // show only what that daemon wrote.
  std::map<std::string, uint64_t> log_start_;
  LocalPaths paths_;
  std::chrono::seconds timeout_;
};

// Whether mnt is listed in /proc/mounts (any type); *type gets the fs type.
bool IsMountpoint(const std::string& mnt, std::string* type = nullptr);

}  // namespace cfs::tools
