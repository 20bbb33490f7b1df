#include "integration/test_util.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "integration/cluster_fixture.h"

namespace cfs::test {

std::string DropCaches() {
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
  if (fd < 0) return std::string("open /proc/sys/vm/drop_caches: ") + strerror(errno);
  ssize_t n = write(fd, "3\n", 2);
  int e = errno;
  close(fd);
  if (n != 2) return std::string("write /proc/sys/vm/drop_caches: ") + strerror(e);
  return "";
}

std::string ReadFileStr(const std::string& path, bool* ok) {
  std::ifstream f(path, std::ios::binary);
  if (ok) *ok = static_cast<bool>(f);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool WriteFileStr(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n <= 0) {
      close(fd);
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return close(fd) == 0;
}

std::vector<std::string> ListDir(const std::string& path, int* err) {
  std::vector<std::string> out;
  if (err) *err = 0;
  DIR* d = opendir(path.c_str());
  if (!d) {
    if (err) *err = errno;
    return out;
  }
  errno = 0;
  while (struct dirent* e = readdir(d)) {
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) out.push_back(e->d_name);
    errno = 0;
  }
  if (errno && err) *err = errno;
  closedir(d);
  return out;
}

uint16_t UnusedPort() {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(s);
    return 1;  // port 1: nothing listens there either
  }
  close(s);  // bound but never listened: connecting is refused
  return ntohs(a.sin_port);
}

static void Walk(const std::string& dir, std::vector<std::string>* out) {
  for (const auto& name : ListDir(dir)) {
    std::string p = dir + "/" + name;
    struct stat st;
    if (lstat(p.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode))
      Walk(p, out);
    else if (S_ISREG(st.st_mode))
      out->push_back(p);
  }
}

std::vector<std::string> FilesUnder(const std::string& dir) {
  std::vector<std::string> out;
  Walk(dir, &out);
  return out;
}

bool ProcessAlive(int pid) {
  if (pid <= 0 || kill(pid, 0) != 0) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(st, line);
  auto paren = line.rfind(')');  // the command name may contain spaces
  if (paren == std::string::npos || paren + 2 >= line.size()) return false;
  return line[paren + 2] != 'Z';
}

int RunWithTimeout(int secs, const std::string& cmd, std::string* output) {
  return Run("timeout -k 5 " + std::to_string(secs) + " " + cmd, output);
}

// --- Erasure-coded clusters ---

// The JSON document in a command's output (the first '{' to the end).
static bool ParseJsonOutput(const std::string& out, nlohmann::json* j) {
  auto brace = out.find('{');
  if (brace == std::string::npos) return false;
  *j = nlohmann::json::parse(out.substr(brace), nullptr, false);
  return !j->is_discarded();
}

std::string GetFileLayout(const LocalCluster& c, const std::string& path, FileLayout* out) {
  std::string o;
  int rc = Run(Bin("cfs") + " getstripe --json '" + path + "'", &o);
  nlohmann::json j;
  if (rc != 0 || !ParseJsonOutput(o, &j)) return "cfs getstripe --json " + path + " (" + std::to_string(rc) + "): " + o;
  (void)c;
  try {
    out->ino = j.at("ino").get<uint64_t>();
    const auto& l = j.at("layout");
    out->unit = l.at("unit").get<uint32_t>();
    out->k = l.at("k").get<uint32_t>();
    out->m = l.at("m").get<uint32_t>();
    out->targets = l.at("targets").get<std::vector<uint32_t>>();
  } catch (const std::exception& e) {
    return std::string("getstripe JSON: ") + e.what() + ": " + o;
  }
  return "";
}

static nlohmann::json DfTargets(const LocalCluster& c) {
  std::string o;
  nlohmann::json j;
  if (c.Cfs("df --json", &o) != 0 || !ParseJsonOutput(o, &j) || !j.contains("targets")) return nlohmann::json::array();
  return j["targets"];
}

std::map<uint32_t, std::string> TargetPaths(const LocalCluster& c) {
  std::map<uint32_t, std::string> out;
  for (const auto& t : DfTargets(c)) out[t.at("id").get<uint32_t>()] = t.at("path").get<std::string>();
  return out;
}

std::map<uint32_t, int> TargetWorkers(const LocalCluster& c) {
  std::map<uint32_t, int> out;
  for (const auto& [id, path] : TargetPaths(c)) {
    auto at = path.find("/storage-");
    if (at != std::string::npos) out[id] = atoi(path.c_str() + at + 9);
  }
  return out;
}

std::string RebuildState(const LocalCluster& c, std::string* json) {
  std::string o;
  nlohmann::json j;
  int rc = c.Cfs("rebuild status --json", &o);
  if (json) *json = o;
  if (rc != 0 || !ParseJsonOutput(o, &j) || !j.contains("state")) return "";
  return j["state"].get<std::string>();
}

std::string WaitRebuildIdle(const LocalCluster& c, int max_s) {
  std::string last;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(max_s);
  while (std::chrono::steady_clock::now() < until) {
    if (RebuildState(c, &last) == "idle") return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  return "rebuild not idle after " + std::to_string(max_s) + " s: " + last;
}

bool WritePatternFileSynced(const std::string& path, uint64_t size, uint64_t seed, size_t chunk) {
  if (!WritePatternFile(path, size, seed, chunk)) return false;
  int fd = open(path.c_str(), O_WRONLY);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  return close(fd) == 0 && ok;
}

bool KillWorker(const LocalCluster& c, int i) {
  pid_t pid = c.WorkerPid(i);
  if (!ProcessAlive(pid)) return false;
  LocalCluster::KillAndWait(pid, SIGKILL);
  return !ProcessAlive(pid);
}

std::string ObjectPath(const std::string& target_dir, uint64_t ino) {
  char name[32];
  snprintf(name, sizeof name, "%016" PRIx64, ino);
  for (int hh = 0; hh < 256; hh++) {
    char shard[8];
    snprintf(shard, sizeof shard, "%02x", hh);
    std::string p = target_dir + "/objects/" + shard + "/" + name;
    if (access(p.c_str(), F_OK) == 0) return p;
  }
  return "";
}

}  // namespace cfs::test
