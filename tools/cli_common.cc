#include "cli_common.h"

#include <cstdio>
#include <iostream>

#include "cluster_locator.h"

namespace cfs::tools {

void AddClusterFlags(CLI::App* cmd, ClusterFlags* f) {
  cmd->add_option("--cluster", f->cluster,
                  "M-worker address(es) HOST:PORT[,HOST:PORT]; default: $CFS_CLUSTER, else the "
                  "cfs mount holding PATH or --mount")
      ->type_name("HOST:PORT");
  cmd->add_option("--mount", f->mount, "find the cluster from this cfs-fuse mount")
      ->type_name("DIR");
  cmd->add_flag("--json", f->json, "print JSON for scripts instead of a table");
  cmd->add_option("--timeout", f->timeout_s, "seconds to wait for the cluster to answer")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
}

std::unique_ptr<client::Client> ConnectOrReport(const ClusterFlags& f, const std::string& path,
                                                std::string* cfs_path, int* exit_code) {
  auto loc = LocateCluster(f.cluster, f.mount, path);
  if (!loc.ok()) {
    *exit_code = loc.status().err() == EINVAL ? UsageError(loc.status().message())
                                              : Fail("finding the cluster", loc.status());
    return nullptr;
  }
  if (cfs_path) *cfs_path = loc->cfs_path;
  auto opts = client::ClientOptions::Parse(loc->cluster, "");
  if (!opts.ok()) {
    *exit_code = UsageError("bad cluster address '" + loc->cluster + "': " + opts.status().message());
    return nullptr;
  }
  opts->timeout = std::chrono::milliseconds(int64_t(f.timeout_s) * 1000);
  auto c = client::Client::Connect(*opts);
  if (!c.ok()) {
    *exit_code = Fail("cannot reach the M-worker at " + loc->cluster, c.status());
    return nullptr;
  }
  return std::move(c).value();
}

int Fail(const std::string& what, const Status& st) {
  std::fprintf(stderr, "cfs: %s: %s\n", what.c_str(), st.ToString().c_str());
  return kExitFailure;
}

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "cfs: error: %s\nRun with --help for more information.\n", msg.c_str());
  return kExitUsage;
}

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << std::endl; }

}  // namespace cfs::tools
