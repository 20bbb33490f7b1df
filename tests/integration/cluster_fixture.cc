#include "integration/cluster_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace cfs::test {

std::string Bin(const std::string& name) { return std::string(CFS_BIN_DIR) + "/" + name; }

int Run(const std::string& cmd, std::string* output) {
  std::string full = cmd + " 2>&1";
  FILE* p = popen(full.c_str(), "r");
  if (!p) return -1;
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (output) *output = out;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

uint64_t FileHash(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  std::string buf(1 << 20, '\0');
  ssize_t n;
  while ((n = read(fd, buf.data(), buf.size())) > 0) XXH3_64bits_update(st, buf.data(), n);
  close(fd);
  uint64_t h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return n < 0 ? 0 : h;
}

std::string TestTransportArgs() {
  auto env = [](const char* n) -> std::string {
    const char* v = getenv(n);
    return v ? v : "";
  };
  std::string t = env("CFS_TEST_TRANSPORT"), b = env("CFS_TEST_BIND");
  if (b.empty() && !t.empty() && t != "tcp") b = env("CFS_RDMA_ADDR");
  std::string args;
  if (!t.empty()) args += " --transport " + t;
  if (!b.empty()) args += " --bind " + b;
  return args;
}

// splitmix64 of (seed, 8-byte word index): any offset can be regenerated.
void FillPattern(void* buf, size_t len, uint64_t seed, uint64_t offset) {
  auto* out = static_cast<unsigned char*>(buf);
  for (size_t i = 0; i < len;) {
    uint64_t pos = offset + i;
    uint64_t word = pos / 8;
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + word + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    for (size_t b = pos % 8; b < 8 && i < len; b++, i++) out[i] = static_cast<unsigned char>(z >> (8 * b));
  }
}

bool WritePatternFile(const std::string& path, uint64_t size, uint64_t seed, size_t chunk) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return false;
  std::string buf(chunk, '\0');
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, size - off));
    FillPattern(buf.data(), n, seed, off);
    ssize_t w = pwrite(fd, buf.data(), n, static_cast<off_t>(off));
    if (w != static_cast<ssize_t>(n)) {
      close(fd);
      return false;
    }
    off += n;
  }
  return close(fd) == 0;
}

std::string CheckPatternFile(const std::string& path, uint64_t size, uint64_t seed, size_t chunk) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return "open " + path + ": " + strerror(errno);
  struct stat st;
  fstat(fd, &st);
  if (static_cast<uint64_t>(st.st_size) != size) {
    close(fd);
    return path + ": size " + std::to_string(st.st_size) + " != " + std::to_string(size);
  }
  std::string buf(chunk, '\0'), want(chunk, '\0');
  for (uint64_t off = 0; off < size;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk, size - off));
    ssize_t r = pread(fd, buf.data(), n, static_cast<off_t>(off));
    if (r != static_cast<ssize_t>(n)) {
      close(fd);
      return path + ": short read at " + std::to_string(off) + ": " + std::to_string(r) + " " +
             strerror(errno);
    }
    FillPattern(want.data(), n, seed, off);
    if (memcmp(buf.data(), want.data(), n) != 0) {
      size_t i = 0;
      while (buf[i] == want[i]) i++;
      close(fd);
      return path + ": content differs at byte " + std::to_string(off + i);
    }
    off += n;
  }
  close(fd);
  return "";
}

LocalCluster::LocalCluster(ClusterOptions opts) : opts_(std::move(opts)) {
  char tmpl[] = "/tmp/cfs-test-XXXXXX";
  char* d = mkdtemp(tmpl);
  dir_ = d ? d : "/tmp/cfs-test-failed";
  mnt_ = dir_ + "/mnt";
}

LocalCluster::~LocalCluster() {
  // A failed test shows the daemons' last words before the directory goes.
  if (::testing::Test::HasFailure()) {
    std::string logs;
    Run("for f in '" + dir_ + "'/log/*.log; do echo \"== $f\"; tail -n 25 \"$f\"; done", &logs);
    fprintf(stderr, "%s\n", logs.c_str());
  }
  Down();
  if (getenv("CFS_KEEP_TEST_DIR") == nullptr) Run("rm -rf '" + dir_ + "'");
}

std::string LocalCluster::Up() {
  std::string cmd = Bin("cfs") + " local up --dir '" + dir_ + "' --mount '" + mnt_ +
                    "' --workers " + std::to_string(opts_.workers) + " --stripe " + opts_.stripe +
                    " --unit " + opts_.unit + TestTransportArgs();
  for (auto& a : opts_.extra_args) cmd += " " + a;
  std::string out;
  int rc = Run(cmd, &out);
  if (rc != 0) return "cfs local up failed (" + std::to_string(rc) + "): " + out;
  up_ = true;
  return "";
}

std::string LocalCluster::Down() {
  if (!up_) return "";
  std::string out;
  int rc = Run(Bin("cfs") + " local down --dir '" + dir_ + "'", &out);
  up_ = false;
  return rc == 0 ? "" : "cfs local down failed: " + out;
}

std::string LocalCluster::StartWorker(int i) {
  std::string out;
  int rc = Run(Bin("cfs") + " local start-worker --dir '" + dir_ + "' " + std::to_string(i), &out);
  return rc == 0 ? "" : "start-worker failed: " + out;
}

static std::string ReadFileTrim(const std::string& p) {
  std::ifstream f(p);
  std::stringstream ss;
  ss << f.rdbuf();
  std::string s = ss.str();
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string LocalCluster::MetaAddr() const { return ReadFileTrim(dir_ + "/run/meta.addr"); }
pid_t LocalCluster::MetaPid() const { return atoi(ReadFileTrim(dir_ + "/run/meta.pid").c_str()); }
pid_t LocalCluster::WorkerPid(int i) const {
  return atoi(ReadFileTrim(dir_ + "/run/storage-" + std::to_string(i) + ".pid").c_str());
}

void LocalCluster::KillAndWait(pid_t pid, int sig) {
  if (pid <= 0) return;
  kill(pid, sig);
  auto alive = [pid] {
    if (kill(pid, 0) != 0) return false;
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string a, b, state;
    st >> a >> b >> state;  // a zombie is gone for our purposes
    return state != "Z";
  };
  for (int i = 0; i < 1000 && alive(); i++) {
    // Reap if it is our child; otherwise just wait for it to vanish.
    waitpid(pid, nullptr, WNOHANG);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

int LocalCluster::Cfs(const std::string& args, std::string* out) const {
  return Run(Bin("cfs") + " " + args + " --cluster " + MetaAddr(), out);
}

}  // namespace cfs::test
