#include "local_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "cli_common.h"
#include "client/client.h"
#include "cluster_locator.h"
#include "common/layout.h"
#include "data_paths.h"
#include "process_util.h"
#include "rpc/rdma_transport.h"
#include "table.h"

namespace cfs::tools {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

static std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

bool IsMountpoint(const std::string& mnt, std::string* type) {
  std::ifstream in("/proc/mounts");
  std::string line;
  bool found = false;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string src, mp, t;
    if (!(ls >> src >> mp >> t)) continue;
    if (Unescape(mp) == mnt) {
      found = true;  // the last entry wins (mounts stack)
      if (type) *type = t;
    }
  }
  return found;
}

// Absolute path without touching the final component (it may be a dead mount).
static std::string AbsoluteNoFollow(const std::string& p) {
  std::error_code ec;
  fs::path a = fs::absolute(p, ec).lexically_normal();
  std::string s = a.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  a = s;
  fs::path parent = fs::weakly_canonical(a.parent_path(), ec);
  if (ec) return s;
  return (parent / a.filename()).string();
}

LocalLauncher::LocalLauncher(std::string dir, std::chrono::seconds timeout)
    : paths_{AbsoluteNoFollow(dir)}, timeout_(timeout) {}

std::string LocalLauncher::LogTail(const std::string& log) const {
  auto it = log_start_.find(log);
  std::string t = TailFile(log, 25, it == log_start_.end() ? 0 : it->second);
  if (t.empty()) return "  (log " + log + " is empty)\n";
  std::string out = "--- last lines of " + log + " ---\n" + t;
  if (out.back() != '\n') out += "\n";
  return out + "---\n";
}


int LocalLauncher::Configure(const UpFlags& f, LocalConfig* cfg) {
  auto loaded = LocalConfig::Load(paths_.dir);
  uint32_t k = 0, m = 0;
  uint64_t unit = 0;
  if (!f.stripe.empty()) {
    if (Status s = ParseStripe(f.stripe, &k, &m); !s.ok()) return UsageError("--stripe: " + s.message());
  }
  if (!f.unit.empty()) {
    auto u = ParseSize(f.unit);
    if (!u.ok()) return UsageError("--unit: " + u.status().message());
    unit = *u;
    Layout l;
    l.unit = unit > UINT32_MAX ? 0 : static_cast<uint32_t>(unit);
    if (Status s = l.ValidateShape(); !s.ok()) return UsageError("--unit: " + s.message());
  }
  std::string mount = f.mount.empty() ? "" : AbsoluteNoFollow(f.mount);
  if (!f.bind.empty()) {
    in_addr ip{};
    if (inet_pton(AF_INET, f.bind.c_str(), &ip) != 1)
      return UsageError("--bind " + f.bind + ": expected an IPv4 address of this machine (e.g. 127.0.0.1, 10.77.0.1)");
    if (ip.s_addr == htonl(INADDR_ANY))
      return UsageError("--bind 0.0.0.0: give one address; clients are told to reach the daemons there");
  }
  if (!f.rebuild_rate.empty() && f.rebuild_rate != "0") {
    if (auto r = ParseSize(f.rebuild_rate); !r.ok()) return UsageError("--rebuild-rate: " + r.status().message());
  }
  // cfs-meta settings: given ones replace what cluster.json holds.
  auto meta_settings = [&f](LocalConfig* c) {
    if (f.heartbeat_timeout_ms >= 0) c->heartbeat_timeout_ms = f.heartbeat_timeout_ms;
    if (f.rebuild_after_s >= 0) c->rebuild_after_s = f.rebuild_after_s;
    if (f.scrub_interval_s >= 0) c->scrub_interval_s = f.scrub_interval_s;
    if (!f.rebuild_rate.empty()) c->rebuild_rate = f.rebuild_rate;
  };

  if (loaded.ok()) {
    *cfg = *loaded;
    auto refuse = [&](const std::string& what, const std::string& given, const std::string& have) {
      return UsageError(paths_.dir + " already holds a cluster with " + what + " " + have +
                        "; it cannot be restarted with " + what + " " + given +
                        " (leave the flag out to keep it)");
    };
    if (f.workers_given && f.workers < cfg->workers)
      return UsageError(paths_.dir + " holds a cluster of " + std::to_string(cfg->workers) +
                        " S-workers; --workers may not shrink it (asked for " +
                        std::to_string(f.workers) + ")");
    if (!f.stripe.empty() && (k != cfg->k || m != cfg->m)) return refuse("--stripe", f.stripe, cfg->stripe());
    if (!f.unit.empty() && unit != cfg->unit) return refuse("--unit", f.unit, FormatSize(cfg->unit));
    if (!f.transport.empty() && f.transport != cfg->transport)
      return refuse("--transport", f.transport, cfg->transport);
    // Ports were chosen free on the old address, and the mount names it.
    if (!f.bind.empty() && f.bind != cfg->bind) return refuse("--bind", f.bind, cfg->bind);
    if (!f.rdma_device.empty() && f.rdma_device != cfg->rdma_device)
      return refuse("--rdma-device", f.rdma_device, cfg->rdma_device.empty() ? "(any)" : cfg->rdma_device);
    if (!mount.empty() && mount != cfg->mount) return refuse("--mount", mount, cfg->mount);
    if (!f.fuse_options.empty()) cfg->fuse_options = f.fuse_options;
    if (!f.log_level.empty()) cfg->log_level = f.log_level;
    meta_settings(cfg);
    if (f.workers_given && f.workers > cfg->workers) {
      // Growing: new workers get new ports.
      int add = f.workers - cfg->workers;
      auto ports = FreePorts(2 * add, cfg->bind);
      if (!ports.ok()) return Fail("choosing ports on " + cfg->bind, ports.status());
      for (int i = 0; i < add; i++) {
        cfg->worker_ports.push_back((*ports)[2 * i]);
        cfg->worker_metrics_ports.push_back((*ports)[2 * i + 1]);
      }
      cfg->workers = f.workers;
    }
    return kExitOk;
  }
  if (loaded.status().err() != ENOENT) return Fail("reading cluster settings", loaded.status());
  std::error_code ec;
  if (fs::exists(paths_.meta_db(), ec))
    return Fail("up", Status::Exists(paths_.meta_db() + " exists but " + paths_.config() +
                                     " does not: this DIR was not made by `cfs local up`"));
  if (mount.empty()) return UsageError("--mount MNT is required the first time a cluster is brought up");
  cfg->workers = f.workers;
  meta_settings(cfg);
  if (f.stripe.empty()) {
    if (f.workers >= 6) {
      // Parity by default: survives the loss of any two S-workers.
      cfg->k = 4;
      cfg->m = 2;
    } else {
      cfg->k = static_cast<uint32_t>(std::min<int>(f.workers, static_cast<int>(kMaxDataUnits)));
      cfg->m = 0;
      std::cout << "note: with " << f.workers << " S-worker(s) the default layout is " << cfg->k
                << "+0, without parity (4+2 needs 6); losing an S-worker loses data. Use --stripe K+M "
                   "to choose.\n";
    }
  } else {
    cfg->k = k;
    cfg->m = m;
  }
  if (static_cast<int>(cfg->k + cfg->m) > cfg->workers)
    return UsageError("--stripe " + cfg->stripe() + " needs " + std::to_string(cfg->k + cfg->m) +
                      " S-workers but --workers is " + std::to_string(cfg->workers));
  cfg->unit = f.unit.empty() ? kDefaultStripeUnit : unit;
  cfg->transport = f.transport.empty() ? "tcp" : f.transport;
  cfg->rdma_device = f.rdma_device;
  cfg->bind = f.bind.empty() ? "127.0.0.1" : f.bind;
  cfg->mount = mount;
  cfg->fuse_options = f.fuse_options;
  cfg->log_level = f.log_level.empty() ? "info" : f.log_level;
  auto ports = FreePorts(2 + 2 * cfg->workers, cfg->bind);
  if (!ports.ok()) {
    if (ports.status().err() == EADDRNOTAVAIL)
      return UsageError("--bind " + cfg->bind + ": no interface of this machine has that address");
    return Fail("choosing ports on " + cfg->bind, ports.status());
  }
  cfg->meta_port = (*ports)[0];
  cfg->meta_metrics_port = (*ports)[1];
  for (int i = 0; i < cfg->workers; i++) {
    cfg->worker_ports.push_back((*ports)[2 + 2 * i]);
    cfg->worker_metrics_ports.push_back((*ports)[3 + 2 * i]);
  }
  return kExitOk;
}

Status LocalLauncher::EnsureDirs(const LocalConfig& cfg) {
  std::error_code ec;
  std::vector<std::string> dirs = {paths_.meta_db(), paths_.log_dir(), paths_.run_dir()};
  for (int i = 0; i < cfg.workers; i++) dirs.push_back(paths_.worker_target(i));
  for (const auto& d : dirs) {
    fs::create_directories(d, ec);
    if (ec) return Status(ec.value(), "mkdir " + d + ": " + ec.message());
  }
  return Status::OK();
}

Result<pid_t> LocalLauncher::SpawnMeta(const LocalConfig& cfg) {
  auto bin = FindBinary("cfs-meta");
  if (!bin.ok()) return bin.status();
  std::vector<std::string> argv = {*bin,
                                   "--listen", cfg.meta_addr(),
                                   "--db", paths_.meta_db(),
                                   "--metrics", cfg.addr(cfg.meta_metrics_port),
                                   "--log", paths_.meta_log(),
                                   "--log-level", cfg.log_level,
                                   "--default-stripe", cfg.stripe(),
                                   "--default-unit", std::to_string(cfg.unit)};
  auto add = [&argv](const char* flag, const std::string& v) {
    argv.push_back(flag);
    argv.push_back(v);
  };
  if (cfg.heartbeat_timeout_ms > 0) add("--heartbeat-timeout-ms", std::to_string(cfg.heartbeat_timeout_ms));
  if (cfg.rebuild_after_s >= 0) add("--rebuild-after-s", std::to_string(cfg.rebuild_after_s));
  if (!cfg.rebuild_rate.empty()) add("--rebuild-rate", cfg.rebuild_rate);
  if (cfg.scrub_interval_s >= 0) add("--scrub-interval-s", std::to_string(cfg.scrub_interval_s));
  log_start_[paths_.meta_log()] = FileSize(paths_.meta_log());
  auto pid = SpawnDaemon(argv, paths_.meta_log());
  if (!pid.ok()) return pid.status();
  CFS_RETURN_IF_ERROR(WriteFileAtomic(paths_.meta_pid(), std::to_string(*pid) + "\n"));
  return pid;
}

Result<pid_t> LocalLauncher::SpawnWorker(const LocalConfig& cfg, int i) {
  auto bin = FindBinary("cfs-storage");
  if (!bin.ok()) return bin.status();
  std::vector<std::string> argv = {
      *bin,
      "--meta", cfg.meta_addr(),
      "--listen", cfg.addr(cfg.worker_ports[i]),
      "--advertise", cfg.bind,
      "--target", paths_.worker_target(i),
      "--metrics", cfg.addr(cfg.worker_metrics_ports[i]),
      "--log", paths_.worker_log(i),
      "--log-level", cfg.log_level,
      "--transport", cfg.transport};
  if (!cfg.rdma_device.empty()) {
    argv.push_back("--rdma-device");
    argv.push_back(cfg.rdma_device);
  }
  log_start_[paths_.worker_log(i)] = FileSize(paths_.worker_log(i));
  auto pid = SpawnDaemon(argv, paths_.worker_log(i));
  if (!pid.ok()) return pid.status();
  CFS_RETURN_IF_ERROR(WriteFileAtomic(paths_.worker_pid(i), std::to_string(*pid) + "\n"));
  return pid;
}

Result<pid_t> LocalLauncher::SpawnFuse(const LocalConfig& cfg) {
  auto bin = FindBinary("cfs-fuse");
  if (!bin.ok()) return bin.status();
  // Foreground (-f) so that the pid we record is the mount's daemon.
  std::vector<std::string> argv = {*bin, cfg.meta_addr(), cfg.mount, "-f"};
  // The mount's data path; the cluster's transport, unless --fuse-options names one.
  std::string client_opts = "transport=" + cfg.transport;
  if (!cfg.rdma_device.empty()) client_opts += ",rdma_device=" + cfg.rdma_device;
  argv.push_back("-o");
  argv.push_back(client_opts);
  if (!cfg.fuse_options.empty()) {
    argv.push_back("-o");
    argv.push_back(cfg.fuse_options);
  }
  log_start_[paths_.fuse_log()] = FileSize(paths_.fuse_log());
  auto pid = SpawnDaemon(argv, paths_.fuse_log());
  if (!pid.ok()) return pid.status();
  CFS_RETURN_IF_ERROR(WriteFileAtomic(paths_.fuse_pid(), std::to_string(*pid) + "\n"));
  return pid;
}

// One GET_STATUS with a short timeout.
static Result<pb::StatusResponse> QueryStatus(const std::string& addr) {
  auto opts = client::ClientOptions::Parse(addr, "");
  if (!opts.ok()) return opts.status();
  opts->timeout = 2000ms;
  auto c = client::Client::Connect(*opts);
  if (!c.ok()) return c.status();
  return (*c)->ClusterStatus();
}

Status LocalLauncher::WaitMeta(const LocalConfig& cfg, pid_t pid) {
  auto deadline = Clock::now() + timeout_;
  Status last = Status::TimedOut("no answer yet");
  while (Clock::now() < deadline) {
    if (!ProcessAlive(pid))
      return Status::IOError("cfs-meta (pid " + std::to_string(pid) + ") exited during start-up\n" +
                             LogTail(paths_.meta_log()));
    auto st = QueryStatus(cfg.meta_addr());
    if (st.ok()) return Status::OK();
    last = st.status();
    std::this_thread::sleep_for(100ms);
  }
  return Status::TimedOut("cfs-meta at " + cfg.meta_addr() + " did not answer GET_STATUS within " +
                          std::to_string(timeout_.count()) + " s (last error: " + last.ToString() +
                          ")\n" + LogTail(paths_.meta_log()));
}

Status LocalLauncher::WaitWorkers(const LocalConfig& cfg, const std::vector<int>& which,
                                  const std::vector<Clock::time_point>& spawned) {
  auto deadline = Clock::now() + timeout_;
  std::vector<int> missing = which;
  std::string last_err;
  while (Clock::now() < deadline) {
    for (int i : missing) {
      pid_t pid = ReadPidFile(paths_.worker_pid(i));
      if (!ProcessAlive(pid))
        return Status::IOError("cfs-storage " + std::to_string(i) + " (pid " + std::to_string(pid) +
                               ") exited during start-up\n" + LogTail(paths_.worker_log(i)));
    }
    pid_t meta = ReadPidFile(paths_.meta_pid());
    if (!ProcessAlive(meta))
      return Status::IOError("cfs-meta exited while S-workers were starting\n" + LogTail(paths_.meta_log()));
    auto st = QueryStatus(cfg.meta_addr());
    if (st.ok()) {
      std::vector<int> still;
      for (int i : missing) {
        bool ok = false;
        int64_t since_ms = spawned[i] == Clock::time_point{}
                               ? INT64_MAX
                               : std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - spawned[i]).count();
        for (const auto& w : st->map().workers())
          if (w.port() == cfg.worker_ports[i] && w.up() && w.last_heartbeat_ms_ago() <= since_ms) ok = true;
        if (!ok) still.push_back(i);
      }
      missing = still;
      if (missing.empty()) return Status::OK();
    } else {
      last_err = st.status().ToString();
    }
    std::this_thread::sleep_for(200ms);
  }
  std::string names;
  for (int i : missing) names += " " + std::to_string(i);
  return Status::TimedOut("S-worker(s)" + names + " not registered and up within " +
                          std::to_string(timeout_.count()) + " s" +
                          (last_err.empty() ? "" : " (last error: " + last_err + ")") + "\n" +
                          LogTail(paths_.worker_log(missing.front())));
}

// stat + create/write/remove of a probe file through the mount.
static Status Probe(const std::string& mnt) {
  struct stat st;
  if (stat(mnt.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + mnt);
  if (!S_ISDIR(st.st_mode)) return Status(ENOTDIR, mnt + " is not a directory");
  std::string probe = mnt + "/.cfs-local-probe-" + std::to_string(getpid());
  int fd = open(probe.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  if (fd < 0) return Status::FromErrno(errno, "create " + probe);
  const char msg[] = "probe\n";
  bool ok = write(fd, msg, sizeof msg - 1) == static_cast<ssize_t>(sizeof msg - 1);
  int e = errno;
  if (close(fd) != 0 && ok) {
    ok = false;
    e = errno;
  }
  if (!ok) {
    unlink(probe.c_str());
    return Status::FromErrno(e, "write " + probe);
  }
  if (unlink(probe.c_str()) != 0) return Status::FromErrno(errno, "remove " + probe);
  return Status::OK();
}

Status LocalLauncher::WaitMount(const LocalConfig& cfg, pid_t fuse_pid) {
  auto deadline = Clock::now() + timeout_;
  Status last = Status::TimedOut("not mounted yet");
  while (Clock::now() < deadline) {
    if (!ProcessAlive(fuse_pid))
      return Status::IOError("cfs-fuse (pid " + std::to_string(fuse_pid) + ") exited before the mount served\n" +
                             LogTail(paths_.fuse_log()));
    std::string type;
    if (IsMountpoint(cfg.mount, &type) && type.rfind("fuse", 0) == 0) {
      last = Probe(cfg.mount);
      if (last.ok()) return last;
    }
    std::this_thread::sleep_for(100ms);
  }
  return Status::TimedOut("the mount at " + cfg.mount + " did not serve requests within " +
                          std::to_string(timeout_.count()) + " s (last: " + last.ToString() + ")\n" +
                          LogTail(paths_.fuse_log()));
}

Status LocalLauncher::Unmount(const std::string& mnt) {
  if (mnt.empty() || !IsMountpoint(mnt)) return Status::OK();
  // umount(2) first, when we may: fusermount3 and umount(8) resolve the path,
  // and a stat of the mount's root waits on cfs-fuse, which retries a GETATTR
  // for up to 15 s when the M-worker is gone. Busy (a file still open): detach.
  if (umount2(mnt.c_str(), 0) == 0 && !IsMountpoint(mnt)) return Status::OK();
  if (errno == EBUSY && umount2(mnt.c_str(), MNT_DETACH) == 0 && !IsMountpoint(mnt)) return Status::OK();
  std::string out;
  if (RunProgram({"fusermount3", "-u", mnt}, &out) == 0 && !IsMountpoint(mnt)) return Status::OK();
  if (RunProgram({"umount", "-l", mnt}, &out) == 0 && !IsMountpoint(mnt)) return Status::OK();
  if (RunProgram({"fusermount3", "-uz", mnt}, &out) == 0 && !IsMountpoint(mnt)) return Status::OK();
  return Status::IOError("cannot unmount " + mnt + ": " + out);
}

int LocalLauncher::CheckTransport(const LocalConfig& cfg) {
  if (cfg.transport != "rdma") return kExitOk;
  std::vector<std::string> problems;
  rpc::RdmaOptions ro;
  ro.device = cfg.rdma_device;
  Status usable = rpc::RdmaUsable(ro);
  if (!usable.ok()) problems.push_back("RDMA is not usable on this machine: " + usable.ToString());
  if (cfg.bind.rfind("127.", 0) == 0)
    problems.push_back("--bind " + cfg.bind + " is a loopback address, which rdma_cm cannot use on Soft-RoCE; " +
                       "pass --bind with the address of the RDMA interface (e.g. --bind 10.77.0.1)");
  if (problems.empty()) return kExitOk;
  std::string msg = "cannot bring the cluster up with --transport rdma:";
  for (const auto& p : problems) msg += "\n  - " + p;
  msg += "\n(--transport auto uses RDMA where it works and TCP elsewhere; nothing was started)";
  // No RDMA at all is a property of the machine (exit 1); only a wrong
  // --bind is a bad command line (exit 2).
  if (!usable.ok()) return Fail("local up", Status(usable.err(), msg));
  return UsageError(msg);
}

Status LocalLauncher::ReportDataPaths(const LocalConfig& cfg) {
  auto opts = client::ClientOptions::Parse(cfg.meta_addr(), "");
  if (!opts.ok()) return opts.status();
  opts->transport = cfg.transport;
  opts->rdma_device = cfg.rdma_device;
  opts->timeout = timeout_;
  auto c = client::Client::Connect(*opts);
  if (!c.ok()) return c.status();
  auto map = (*c)->GetClusterMap(true);
  if (!map.ok()) return map.status();
  auto paths = ProbeDataPaths(**c, *map);
  std::map<std::string, int> serves, reached;
  for (const auto& w : map->workers()) {
    const DataPath& p = paths[w.id()];
    if (!w.up()) continue;
    if (p.reached.empty())
      return Status::Unavailable("S-worker " + w.host() + ":" + std::to_string(w.port()) + " serves " + p.serves +
                                 " but a --transport " + cfg.transport + " client cannot reach it: " + p.error);
    if (cfg.transport == "rdma" && p.reached != "rdma")
      return Status::Unavailable("S-worker " + w.host() + ":" + std::to_string(w.port()) + " was reached over " +
                                 p.reached + ", not RDMA");
    serves[p.serves]++;
    reached[p.reached]++;
  }
  auto list = [](const std::map<std::string, int>& m) {
    std::string s;
    for (const auto& [k, n] : m) s += (s.empty() ? "" : ", ") + k + " (" + std::to_string(n) + ")";
    return s;
  };
  std::cout << "transport     " << cfg.transport << ": S-workers serve " << list(serves)
            << "; this machine reaches them over " << list(reached) << "\n";
  return Status::OK();
}

int LocalLauncher::Up(const UpFlags& flags) {
  std::error_code ec;
  fs::create_directories(paths_.dir, ec);
  if (ec) return Fail("local up", Status(ec.value(), "mkdir " + paths_.dir + ": " + ec.message()));
  paths_.dir = fs::canonical(paths_.dir, ec).string();
  LocalConfig cfg;
  if (int rc = Configure(flags, &cfg); rc != kExitOk) return rc;
  if (int rc = CheckTransport(cfg); rc != kExitOk) return rc;
  if (Status s = EnsureDirs(cfg); !s.ok()) return Fail("local up", s);
  if (Status s = cfg.Save(paths_.dir); !s.ok()) return Fail("saving cluster settings", s);
  if (Status s = WriteFileAtomic(paths_.meta_addr(), cfg.meta_addr() + "\n"); !s.ok())
    return Fail("local up", s);

  // What this run started, stopped again if a later step fails.
  std::vector<pid_t> started;
  bool mounted_here = false;
  auto fail = [&](const std::string& what, const Status& s) {
    int rc = Fail(what, s);
    if (mounted_here) (void)Unmount(cfg.mount);
    std::reverse(started.begin(), started.end());
    StopProcesses(started, 10s);
    if (!started.empty())
      std::fprintf(stderr, "cfs: stopped the %zu daemon(s) this run had started\n", started.size());
    return rc;
  };

  // M-worker.
  pid_t meta = ReadPidFile(paths_.meta_pid());
  if (ProcessRuns(meta, "cfs-meta")) {
    std::cout << "cfs-meta      already running, pid " << meta << "\n";
  } else {
    auto p = SpawnMeta(cfg);
    if (!p.ok()) return fail("starting cfs-meta", p.status());
    meta = *p;
    started.push_back(meta);
    std::cout << "cfs-meta      " << cfg.meta_addr() << "  pid " << meta << "  log " << paths_.meta_log() << "\n";
  }
  if (Status s = WaitMeta(cfg, meta); !s.ok()) return fail("waiting for cfs-meta", s);

  // S-workers.
  std::vector<int> all;
  std::vector<Clock::time_point> spawned(cfg.workers);
  for (int i = 0; i < cfg.workers; i++) {
    all.push_back(i);
    pid_t w = ReadPidFile(paths_.worker_pid(i));
    if (ProcessRuns(w, "cfs-storage")) {
      std::cout << "cfs-storage " << i << " already running, pid " << w << "\n";
      continue;
    }
    spawned[i] = Clock::now();
    auto p = SpawnWorker(cfg, i);
    if (!p.ok()) return fail("starting cfs-storage " + std::to_string(i), p.status());
    started.push_back(*p);
    std::cout << "cfs-storage " << i << " " << cfg.addr(cfg.worker_ports[i]) << "  pid " << *p
              << "  target " << paths_.worker_target(i) << "\n";
  }
  if (Status s = WaitWorkers(cfg, all, spawned); !s.ok()) return fail("waiting for S-workers", s);
  if (Status s = ReportDataPaths(cfg); !s.ok()) return fail("checking the data path", s);

  // The mount.
  pid_t fuse = ReadPidFile(paths_.fuse_pid());
  std::string type;
  bool have_mount = IsMountpoint(cfg.mount, &type) && type == "fuse.cfs";
  if (have_mount && ProcessRuns(fuse, "cfs-fuse")) {
    std::cout << "mount         " << cfg.mount << " already mounted, cfs-fuse pid " << fuse << "\n";
  } else {
    if (IsMountpoint(cfg.mount)) {
      // A mount whose daemon died answers ENOTCONN: clear it.
      if (Status s = Unmount(cfg.mount); !s.ok()) return fail("clearing a dead mount", s);
    }
    fs::create_directories(cfg.mount, ec);
    if (ec) return fail("local up", Status(ec.value(), "mkdir " + cfg.mount + ": " + ec.message()));
    auto p = SpawnFuse(cfg);
    if (!p.ok()) return fail("starting cfs-fuse", p.status());
    fuse = *p;
    started.push_back(fuse);
    mounted_here = true;
  }
  if (Status s = WaitMount(cfg, fuse); !s.ok()) return fail("waiting for the mount", s);
  std::cout << "mount         " << cfg.mount << "  (cfs-fuse pid " << fuse << ", log " << paths_.fuse_log()
            << ")\n"
            << "cluster up: " << cfg.workers << " S-workers, default layout " << cfg.stripe()
            << " unit=" << FormatSize(cfg.unit) << "; export CFS_CLUSTER=" << cfg.meta_addr()
            << (cfg.transport == "tcp" ? "" : " CFS_TRANSPORT=" + cfg.transport) << "\n";
  return kExitOk;
}

int LocalLauncher::Down() {
  std::error_code ec;
  if (!fs::exists(paths_.dir, ec)) {
    std::cout << paths_.dir << " does not exist: nothing runs\n";
    return kExitOk;
  }
  auto cfg = LocalConfig::Load(paths_.dir);
  int rc = kExitOk;
  if (cfg.ok()) {
    if (Status s = Unmount(cfg->mount); !s.ok()) rc = Fail("local down", s);
  }
  // The mount's daemon first (it flushes to the S-workers), then the
  // S-workers, then the M-worker.
  auto stop = [&](const std::vector<std::string>& pidfiles, const std::string& prog,
                  std::chrono::milliseconds grace) {
    std::vector<pid_t> pids;
    for (const auto& f : pidfiles) {
      pid_t p = ReadPidFile(f);
      if (ProcessRuns(p, prog)) pids.push_back(p);
    }
    for (pid_t p : StopProcesses(pids, grace))
      std::fprintf(stderr, "cfs: %s pid %d did not stop on SIGTERM; killed\n", prog.c_str(), p);
    for (const auto& f : pidfiles) unlink(f.c_str());
    if (!pids.empty()) std::cout << "stopped " << pids.size() << " " << prog << "\n";
  };
  stop({paths_.fuse_pid()}, "cfs-fuse", 10s);
  std::vector<std::string> workers;
  int n = cfg.ok() ? cfg->workers : 0;
  for (const auto& e : fs::directory_iterator(paths_.run_dir(), ec)) {
    std::string name = e.path().filename().string();
    if (name.rfind("storage-", 0) == 0 && name.size() > 12 && name.substr(name.size() - 4) == ".pid")
      n = std::max(n, std::atoi(name.c_str() + 8) + 1);
  }
  for (int i = 0; i < n; i++) workers.push_back(paths_.worker_pid(i));
  stop(workers, "cfs-storage", 15s);
  stop({paths_.meta_pid()}, "cfs-meta", 15s);
  if (rc == kExitOk) std::cout << "cluster in " << paths_.dir << " is down\n";
  return rc;
}

int LocalLauncher::StartWorker(int i) {
  auto cfg = LocalConfig::Load(paths_.dir);
  if (!cfg.ok()) return Fail("start-worker", cfg.status());
  if (i < 0 || i >= cfg->workers)
    return UsageError("worker index " + std::to_string(i) + " out of range: this cluster has workers 0.." +
                      std::to_string(cfg->workers - 1));
  if (!ProcessRuns(ReadPidFile(paths_.meta_pid()), "cfs-meta"))
    return Fail("start-worker", Status::Unavailable("cfs-meta is not running; use `cfs local up --dir " +
                                                    paths_.dir + "`"));
  pid_t old = ReadPidFile(paths_.worker_pid(i));
  if (ProcessRuns(old, "cfs-storage")) {
    std::cout << "stopping cfs-storage " << i << " (pid " << old << ")\n";
    StopProcesses({old}, 15s);
  }
  std::error_code ec;
  fs::create_directories(paths_.worker_target(i), ec);
  std::vector<Clock::time_point> spawned(cfg->workers);
  spawned[i] = Clock::now();
  auto p = SpawnWorker(*cfg, i);
  if (!p.ok()) return Fail("starting cfs-storage " + std::to_string(i), p.status());
  if (Status s = WaitWorkers(*cfg, {i}, spawned); !s.ok()) {
    StopProcesses({*p}, 10s);
    return Fail("waiting for cfs-storage " + std::to_string(i), s);
  }
  std::cout << "cfs-storage " << i << " " << cfg->addr(cfg->worker_ports[i]) << " pid " << *p
            << " registered and up\n";
  return kExitOk;
}

int LocalLauncher::ShowStatus(bool json) {
  auto cfg = LocalConfig::Load(paths_.dir);
  if (!cfg.ok()) return Fail("local status", cfg.status());
  pb::StatusResponse st;
  bool meta_answers = false;
  pid_t meta = ReadPidFile(paths_.meta_pid());
  bool meta_runs = ProcessRuns(meta, "cfs-meta");
  if (meta_runs) {
    auto s = QueryStatus(cfg->meta_addr());
    if (s.ok()) {
      st = *s;
      meta_answers = true;
    }
  }
  auto registered = [&](uint16_t port) -> std::string {
    if (!meta_answers) return "?";
    for (const auto& w : st.map().workers())
      if (w.port() == port) return w.up() ? "up" : "down";
    return "no";
  };
  struct Row {
    std::string name, addr, state, reg, log;
    pid_t pid;
  };
  std::vector<Row> rows;
  rows.push_back({"cfs-meta", cfg->meta_addr(), meta_runs ? "running" : "stopped",
                  meta_runs ? (meta_answers ? "answers" : "no answer") : "-", paths_.meta_log(),
                  meta_runs ? meta : 0});
  for (int i = 0; i < cfg->workers; i++) {
    pid_t p = ReadPidFile(paths_.worker_pid(i));
    bool runs = ProcessRuns(p, "cfs-storage");
    rows.push_back({"cfs-storage " + std::to_string(i), cfg->addr(cfg->worker_ports[i]),
                    runs ? "running" : "stopped", registered(cfg->worker_ports[i]), paths_.worker_log(i),
                    runs ? p : 0});
  }
  pid_t fuse = ReadPidFile(paths_.fuse_pid());
  bool fuse_runs = ProcessRuns(fuse, "cfs-fuse");
  std::string type;
  bool mounted = IsMountpoint(cfg->mount, &type) && type == "fuse.cfs";
  rows.push_back({"cfs-fuse", cfg->mount, fuse_runs ? "running" : "stopped", mounted ? "mounted" : "not mounted",
                  paths_.fuse_log(), fuse_runs ? fuse : 0});
  if (json) {
    nlohmann::json j{{"dir", paths_.dir},       {"meta_addr", cfg->meta_addr()}, {"workers", cfg->workers},
                     {"stripe", cfg->stripe()}, {"unit", cfg->unit},           {"transport", cfg->transport},
                     {"bind", cfg->bind},       {"mount", cfg->mount},     {"mounted", mounted}};
    j["processes"] = nlohmann::json::array();
    for (const auto& r : rows)
      j["processes"].push_back({{"name", r.name}, {"address", r.addr}, {"running", r.state == "running"},
                                {"pid", r.pid}, {"cluster_view", r.reg}, {"log", r.log}});
    PrintJson(j);
    return kExitOk;
  }
  Table t({"PROCESS", "PID", "STATE", "ADDRESS", "M-WORKER VIEW", "LOG"});
  t.AlignRight(1);
  for (const auto& r : rows)
    t.AddRow({r.name, r.pid ? std::to_string(r.pid) : "-", r.state, r.addr, r.reg, r.log});
  std::cout << "cluster in " << paths_.dir << ": " << cfg->workers << " S-workers, layout " << cfg->stripe()
            << " unit=" << FormatSize(cfg->unit) << ", transport " << cfg->transport << ", bind "
            << cfg->bind << "\n\n"
            << t.ToString();
  return kExitOk;
}

}  // namespace cfs::tools
