#include "cli_common.h"

#include <cstdio>
#include <cstdlib>
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
  cmd->add_option("--transport", f->transport,
                  "data path to the S-workers: tcp, rdma or auto (RDMA where it reaches, else TCP); "
                  "default: $CFS_TRANSPORT, else auto. The M-worker is always reached over TCP")
      ->check(CLI::IsMember({"tcp", "rdma", "auto"}))
      ->type_name("tcp|rdma|auto");
  cmd->add_option("--rdma-device", f->rdma_device, "RDMA device for --transport rdma|auto (e.g. rxe0)")
      ->type_name("NAME");
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
  opts->transport = DataTransport(f);
  if (opts->transport != "tcp" && opts->transport != "rdma" && opts->transport != "auto") {
    *exit_code = UsageError("CFS_TRANSPORT=" + opts->transport + ": expected tcp, rdma or auto");
    return nullptr;
  }
  opts->rdma_device = f.rdma_device;
  auto c = client::Client::Connect(*opts);
  if (!c.ok() && c.status().message().rfind("data transport ", 0) == 0) {
    *exit_code = Fail("--transport " + opts->transport, c.status());
    return nullptr;
  }
  if (!c.ok()) {
    *exit_code = Fail("cannot reach the M-worker at " + loc->cluster, c.status());
    return nullptr;
  }
  return std::move(c).value();
}

std::string DataTransport(const ClusterFlags& f) {
  if (!f.transport.empty()) return f.transport;
  const char* env = std::getenv("CFS_TRANSPORT");
  return env && *env ? env : "auto";
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
