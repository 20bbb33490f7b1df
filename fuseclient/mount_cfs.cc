// mount.cfs: the helper mount(8) runs for `mount -t cfs HOST:PORT DIR` and for
// fstab lines such as `HOST:PORT /cluster cfs defaults,_netdev 0 0`.
// mount(8) calls it as `mount.cfs SOURCE DIR [-sfnv] [-o OPTS] [-t TYPE]`; it
// drops the options only mount(8) cares about and execs cfs-fuse, found next
// to this binary, in ../bin, or on PATH.
#include <limits.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char kUsage[] =
    "usage: mount.cfs HOST:PORT[,HOST:PORT...] MOUNTPOINT [-o options] [-f] [-n] [-s] [-v]\n"
    "Helper for `mount -t cfs`; runs cfs-fuse (see cfs-fuse --help for the options).\n";

bool MountOnly(const std::string& key) {
  static const char* const kDrop[] = {"defaults", "_netdev", "auto",  "noauto", "user",
                                      "users",    "nouser",  "owner", "group",  "nofail",
                                      "rw",       "comment", "loop",  "helper"};
  for (const char* d : kDrop)
    if (key == d) return true;
  return key.rfind("x-", 0) == 0;
}

bool Executable(const std::string& p) { return access(p.c_str(), X_OK) == 0; }

std::string FindCfsFuse() {
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    std::string dir(self);
    dir = dir.substr(0, dir.rfind('/'));
    if (Executable(dir + "/cfs-fuse")) return dir + "/cfs-fuse";
    if (Executable(dir + "/../bin/cfs-fuse")) return dir + "/../bin/cfs-fuse";
  }
  const char* path = getenv("PATH");
  std::string ps = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= ps.size()) {
    size_t end = ps.find(':', start);
    if (end == std::string::npos) end = ps.size();
    std::string cand = ps.substr(start, end - start) + "/cfs-fuse";
    if (end > start && Executable(cand)) return cand;
    start = end + 1;
  }
  return "";
}

// Appends one -o group; plain appends (not a + b temporaries) keep GCC 12's
// -Wrestrict quiet at -O3.
void AppendOption(std::string* opts, const std::string& o) {
  if (!opts->empty()) opts->push_back(',');
  opts->append(o);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> pos;
  std::string opts;
  bool fake = false, verbose = false;
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      fputs(kUsage, stdout);
      return 0;
    } else if (a == "-o" && i + 1 < argc) {
      AppendOption(&opts, argv[++i]);
    } else if (a.rfind("-o", 0) == 0 && a.size() > 2) {
      AppendOption(&opts, a.substr(2));
    } else if ((a == "-t" || a == "-N") && i + 1 < argc) {
      i++;  // type (cfs) and namespace: nothing to do
    } else if (a == "-f") {
      fake = true;
    } else if (a == "-v") {
      verbose = true;
    } else if (a == "-n" || a == "-s") {
      // no mtab to skip; sloppy options are the default here
    } else if (!a.empty() && a[0] == '-') {
      fprintf(stderr, "mount.cfs: unknown option %s\n%s", a.c_str(), kUsage);
      return 1;
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) {
    fputs(kUsage, stderr);
    return 1;
  }
  std::string keep;
  size_t start = 0;
  while (start <= opts.size()) {
    size_t end = opts.find(',', start);
    if (end == std::string::npos) end = opts.size();
    std::string o = opts.substr(start, end - start);
    if (!o.empty() && !MountOnly(o.substr(0, o.find('='))))
      keep += (keep.empty() ? "" : ",") + o;
    start = end + 1;
  }
  std::string fuse = FindCfsFuse();
  if (fuse.empty()) {
    fprintf(stderr, "mount.cfs: cannot find cfs-fuse next to %s, in ../bin or on PATH\n", argv[0]);
    return 1;
  }
  std::vector<std::string> args = {fuse, pos[0], pos[1]};
  if (!keep.empty()) {
    args.push_back("-o");
    args.push_back(keep);
  }
  if (verbose) {
    for (auto& a : args) fprintf(stderr, "%s ", a.c_str());
    fputc('\n', stderr);
  }
  if (fake) return 0;
  std::vector<char*> cargs;
  for (auto& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);
  execv(cargs[0], cargs.data());
  fprintf(stderr, "mount.cfs: cannot run %s: %s\n", cargs[0], strerror(errno));
  return 1;
}
