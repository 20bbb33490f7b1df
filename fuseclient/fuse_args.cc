#include "fuse_args.h"

#include <limits.h>
#include <stdlib.h>

#include <CLI/CLI.hpp>

namespace cfs::fuse {
namespace {

// Options of the CFS client library (see include/cfs/cfs.h).
bool IsClientOption(const std::string& key) {
  return key == "transport" || key == "rdma_device" || key == "timeout_ms" || key == "readahead" || key == "channels" ||
         key == "write_behind" || key == "failure_timeout_ms";
}

// Options only mount(8) and fstab care about; harmless to drop here too.
bool IsMountOnlyOption(const std::string& key) {
  return key == "defaults" || key == "_netdev" || key == "auto" || key == "noauto" ||
         key == "user" || key == "users" || key == "nouser" || key == "owner" ||
         key == "group" || key == "nofail" || key == "comment" || key.rfind("x-", 0) == 0;
}

// Splits "a,b\,c" on unescaped commas.
std::vector<std::string> SplitOpts(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      cur += s[++i];
    } else if (s[i] == ',') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
    } else {
      cur += s[i];
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

}  // namespace

const char* FuseUsage() {
  return "usage: cfs-fuse HOST:PORT[,HOST:PORT...] MOUNTPOINT [-o opt[,opt...]] [-f] [-d]\n"
         "\n"
         "Mounts a CFS cluster (its M-worker addresses) at MOUNTPOINT.\n"
         "\n"
         "  -f            stay in the foreground (default: daemonize once mounted)\n"
         "  -d            debug: trace every FUSE request (implies -f)\n"
         "  -o opt,...    options, comma separated:\n"
         "     CFS client:  transport=tcp|rdma|auto, rdma_device=NAME, readahead=STRIPES,\n"
         "                  timeout_ms=MS, channels=N, write_behind=STRIPES, failure_timeout_ms=MS\n"
         "                  transport: the data path to the S-workers (default tcp); rdma\n"
         "                  fails at start when RDMA is unusable (no device, RLIMIT_MEMLOCK\n"
         "                  too low), auto uses RDMA where it reaches an S-worker, else\n"
         "                  TCP, and logs its choice. The M-worker is always reached over\n"
         "                  TCP. rdma_device: e.g. rxe0, mlx5_0 (default: the device\n"
         "                  that holds the S-worker's route)\n"
         "     daemon:      log=FILE, loglevel=trace|debug|info|warn|error\n"
         "     FUSE/mount:  anything else (ro, noexec, nosuid, nodev, noatime, fsname=...),\n"
         "                  passed to libfuse; default_permissions, allow_other,\n"
         "                  fsname=HOST:PORT and subtype=cfs are always set\n"
         "                  (no_allow_other turns allow_other off)\n"
         "  -h, --help    this text\n";
}

Result<FuseArgs> ParseFuseArgs(int argc, char** argv) {
  FuseArgs a;
  std::vector<std::string> positional;
  std::vector<std::string> opt_groups;
  CLI::App app{"cfs-fuse"};
  app.set_help_flag();  // we print our own usage
  app.add_flag("-h,--help", a.help);
  app.add_flag("-f,--foreground", a.foreground);
  app.add_flag("-d,--debug", a.debug);
  app.add_option("-o", opt_groups)->take_all()->allow_extra_args(false);
  app.add_option("args", positional);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return Status::Invalid(std::string(e.what()));
  }
  if (a.help) return a;
  if (positional.size() != 2)
    return Status::Invalid("expected HOST:PORT and MOUNTPOINT, got " +
                           std::to_string(positional.size()) + " argument(s)");
  a.cluster = positional[0];
  char real[PATH_MAX];
  if (realpath(positional[1].c_str(), real) == nullptr)
    return Status::FromErrno(errno, "mountpoint " + positional[1]);
  a.mountpoint = real;
  if (a.debug) a.foreground = true;

  bool allow_other = true, have_fsname = false, have_subtype = false;
  for (const auto& group : opt_groups) {
    for (const auto& opt : SplitOpts(group)) {
      size_t eq = opt.find('=');
      std::string key = opt.substr(0, eq);
      std::string val = eq == std::string::npos ? "" : opt.substr(eq + 1);
      if (IsClientOption(key)) {
        a.client_options += (a.client_options.empty() ? "" : ",") + opt;
      } else if (key == "log") {
        a.log_file = val;
      } else if (key == "loglevel") {
        if (val != "trace" && val != "debug" && val != "info" && val != "warn" && val != "error")
          return Status::Invalid("option loglevel=" + val +
                                 ": expected trace, debug, info, warn or error");
        a.log_level = val;
      } else if (key == "debug") {
        a.debug = a.foreground = true;
      } else if (key == "no_allow_other") {
        allow_other = false;
      } else if (key == "allow_other" || key == "default_permissions" || IsMountOnlyOption(key)) {
        // always on / meaningless here
      } else {
        if (key == "fsname") have_fsname = true;
        if (key == "subtype") have_subtype = true;
        a.fuse_opts.push_back(opt);
      }
    }
  }
  a.fuse_opts.push_back("default_permissions");
  if (allow_other) a.fuse_opts.push_back("allow_other");
  if (!have_fsname) a.fuse_opts.push_back("fsname=" + a.cluster);
  if (!have_subtype) a.fuse_opts.push_back("subtype=cfs");
  return a;
}

}  // namespace cfs::fuse
