// The settings of a launcher-made local cluster, kept in DIR/cluster.json so
// that `cfs local up` on the same DIR brings back the same file system on the
// same ports. Paths of everything under DIR are fixed here too.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace cfs::tools {

struct LocalConfig {
  int workers = 6;
  uint32_t k = 6, m = 0;
  uint64_t unit = 1 << 20;
  std::string transport = "tcp";  // tcp | rdma | auto: S-workers' --transport and the mount's
  std::string rdma_device;        // "" = the device that holds `bind`
  // Address every daemon listens on (M-worker, S-workers, metrics). rdma_cm
  // cannot use 127.x on Soft-RoCE, so rdma clusters bind the RDMA interface's.
  std::string bind = "127.0.0.1";
  std::string mount;        // absolute mountpoint
  std::string fuse_options; // extra -o options for cfs-fuse ("" = none)
  std::string log_level = "info";
  // cfs-meta redundancy settings; -1 / "" = cfs-meta's default.
  int64_t heartbeat_timeout_ms = -1, rebuild_after_s = -1, scrub_interval_s = -1;
  std::string rebuild_rate;
  uint16_t meta_port = 0, meta_metrics_port = 0;
  std::vector<uint16_t> worker_ports, worker_metrics_ports;

  std::string stripe() const { return std::to_string(k) + "+" + std::to_string(m); }
  std::string meta_addr() const { return addr(meta_port); }
  std::string addr(uint16_t port) const { return bind + ":" + std::to_string(port); }

  Status Save(const std::string& dir) const;
  // NotFound if DIR/cluster.json does not exist.
  static Result<LocalConfig> Load(const std::string& dir);
};

// Fixed layout of DIR.
struct LocalPaths {
  std::string dir;
  std::string config() const { return dir + "/cluster.json"; }
  std::string meta_db() const { return dir + "/meta"; }
  std::string log_dir() const { return dir + "/log"; }
  std::string run_dir() const { return dir + "/run"; }
  std::string meta_log() const { return log_dir() + "/meta.log"; }
  std::string fuse_log() const { return log_dir() + "/fuse.log"; }
  std::string meta_pid() const { return run_dir() + "/meta.pid"; }
  std::string fuse_pid() const { return run_dir() + "/fuse.pid"; }
  std::string meta_addr() const { return run_dir() + "/meta.addr"; }
  std::string worker_dir(int i) const { return dir + "/storage-" + std::to_string(i); }
  std::string worker_target(int i) const { return worker_dir(i) + "/t0"; }
  std::string worker_log(int i) const { return log_dir() + "/storage-" + std::to_string(i) + ".log"; }
  std::string worker_pid(int i) const { return run_dir() + "/storage-" + std::to_string(i) + ".pid"; }
};

}  // namespace cfs::tools
