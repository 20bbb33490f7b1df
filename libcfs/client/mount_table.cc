#include "client/mount_table.h"

#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace cfs::client {
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

}  // namespace cfs::client
