#include "cluster_locator.h"

#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cfs::tools {
namespace fs = std::filesystem;

// /proc/mounts escapes space, tab, newline and backslash as \ooo.
static std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); i++) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::vector<CfsMount> ListCfsMounts(const std::string& mounts_file) {
  std::vector<CfsMount> out;
  std::ifstream in(mounts_file);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string src, mnt, type;
    if (!(ls >> src >> mnt >> type)) continue;
    if (type != "fuse.cfs" && type != "cfs") continue;
    out.push_back({Unescape(src), Unescape(mnt)});
  }
  return out;
}

// Longest mountpoint that is `p` or a directory above it.
static const CfsMount* Match(const std::vector<CfsMount>& mounts, const fs::path& p,
                             std::string* rel) {
  const CfsMount* best = nullptr;
  std::string ps = p.string();
  for (const auto& m : mounts) {
    const std::string& mp = m.mountpoint;
    bool inside = ps == mp || (ps.size() > mp.size() && ps.compare(0, mp.size(), mp) == 0 &&
                               (mp == "/" || ps[mp.size()] == '/'));
    if (inside && (!best || mp.size() > best->mountpoint.size())) {
      best = &m;
      std::string r = ps.substr(mp == "/" ? 0 : mp.size());
      *rel = r.empty() ? "/" : r;
    }
  }
  return best;
}

Result<CfsMount> MountOfPath(const std::string& path, std::string* cfs_path) {
  auto mounts = ListCfsMounts();
  if (mounts.empty()) return Status::NotFound("no cfs file system is mounted");
  std::error_code ec;
  fs::path abs = fs::absolute(path, ec).lexically_normal();
  if (ec) return Status::Invalid("bad path " + path + ": " + ec.message());
  std::string s = abs.string();
  if (s.size() > 1 && s.back() == '/') abs = s.substr(0, s.size() - 1);
  std::string rel;
  if (auto* m = Match(mounts, abs, &rel)) {
    *cfs_path = rel;
    return *m;
  }
  // Symlinks on the way to the mount (e.g. /tmp -> /private/tmp): resolve the
  // deepest existing ancestor and try again.
  fs::path existing = abs, rest;
  while (!existing.empty() && !fs::exists(existing, ec)) {
    rest = existing.filename() / rest;
    existing = existing.parent_path();
  }
  fs::path canon = fs::canonical(existing, ec);
  if (!ec) {
    fs::path full = (rest.empty() ? canon : canon / rest).lexically_normal();
    if (auto* m = Match(mounts, full, &rel)) {
      *cfs_path = rel;
      return *m;
    }
  }
  return Status::NotFound(path + " is not on a cfs mount");
}

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
