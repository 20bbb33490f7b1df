// Command line of cfs-fuse: `cfs-fuse HOST:PORT[,HOST:PORT] MOUNTPOINT [-o opt,...] [-f] [-d]`.
// The -o list mixes CFS client options (handed to ClientOptions::Parse), our own
// daemon options (log, loglevel) and FUSE mount options (passed to libfuse).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace cfs::fuse {

struct FuseArgs {
  std::string cluster;     // "host:port[,host:port]"
  std::string mountpoint;  // absolute path
  bool foreground = false;
  bool debug = false;      // -d: libfuse request trace, implies foreground
  bool help = false;
  std::string client_options;          // "key=value,..." for ClientOptions::Parse
  std::vector<std::string> fuse_opts;  // mount options for libfuse, one per entry
  std::string log_file;                // empty: stderr (or nothing once daemonized)
  std::string log_level = "info";
};

const char* FuseUsage();

// Parses argv. Errors are EINVAL with a message fit for the terminal.
Result<FuseArgs> ParseFuseArgs(int argc, char** argv);

}  // namespace cfs::fuse
