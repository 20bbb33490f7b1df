#include "cluster_locator.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cfs::tools {
namespace fs = std::filesystem;

Result<Located> LocateCluster(const std::string& cluster_flag, const std::string& mount_flag,
                              const std::string& path) {
  Located loc;
  std::string via_path_cluster;
  if (!path.empty()) {
    std::string rel;
    auto m = MountOfPath(path, &rel);
    if (m.ok()) {
      loc.cfs_path = rel;
      via_path_cluster = m->source;
    } else {
      if (path[0] != '/')
        return Status::Invalid(path + " is not on a cfs mount; give a path on a mount, or an "
                                      "absolute path inside CFS together with --cluster");
      loc.cfs_path = fs::path(path).lexically_normal().string();
    }
  }
  if (!cluster_flag.empty()) {
    loc.cluster = cluster_flag;
  } else if (const char* env = std::getenv("CFS_CLUSTER"); env && *env) {
    loc.cluster = env;
  } else if (!mount_flag.empty()) {
    std::string rel;
    auto m = MountOfPath(mount_flag, &rel);
    if (!m.ok()) return Status::NotFound("--mount " + mount_flag + ": " + m.status().message());
    loc.cluster = m->source;
  } else if (!via_path_cluster.empty()) {
    loc.cluster = via_path_cluster;
  } else {
    // Last resort: the current directory may be on a mount.
    std::string rel;
    auto m = MountOfPath(".", &rel);
    if (!m.ok())
      return Status::Invalid(
          "no cluster given: use --cluster HOST:PORT, set CFS_CLUSTER, or point at a cfs mount "
          "with --mount DIR or a PATH on it");
    loc.cluster = m->source;
  }
  if (loc.cfs_path.size() > 1 && loc.cfs_path.back() == '/') loc.cfs_path.pop_back();
  return loc;
}

}  // namespace cfs::tools
