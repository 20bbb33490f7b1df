#include "process_util.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace cfs::tools {
namespace fs = std::filesystem;

static bool Executable(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) && access(p.c_str(), X_OK) == 0;
}

Result<std::string> FindBinary(const std::string& name) {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec && Executable(self.parent_path() / name)) return (self.parent_path() / name).string();
  if (const char* path = std::getenv("PATH")) {
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':'))
      if (!dir.empty() && Executable(fs::path(dir) / name)) return (fs::path(dir) / name).string();
  }
  return Status::NotFound(name + " not found next to the cfs binary (" +
                          self.parent_path().string() + ") nor on PATH");
}

Result<pid_t> SpawnDaemon(const std::vector<std::string>& argv, const std::string& log) {
  int logfd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (logfd < 0) return Status::FromErrno(errno, "open log " + log);
  int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int errpipe[2];
  if (nullfd < 0 || pipe2(errpipe, O_CLOEXEC) != 0) {
    int e = errno;
    close(logfd);
    if (nullfd >= 0) close(nullfd);
    return Status::FromErrno(e, "spawn");
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(logfd);
    close(nullfd);
    close(errpipe[0]);
    close(errpipe[1]);
    return Status::FromErrno(e, "fork");
  }
  if (pid == 0) {
    // Child: only async-signal-safe calls until exec.
    setsid();
    dup2(nullfd, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    // Everything else is O_CLOEXEC or closed here (the caller's pipes must not
    // leak into a daemon, or whoever reads our output would wait forever).
    for (int fd = 3; fd < 1024; fd++)
      if (fd != errpipe[1]) close(fd);
    signal(SIGPIPE, SIG_DFL);
    execv(args[0], args.data());
    int e = errno;
    ssize_t w = write(errpipe[1], &e, sizeof e);
    (void)w;
    _exit(127);
  }
  close(logfd);
  close(nullfd);
  close(errpipe[1]);
  int child_err = 0;
  ssize_t n;
  do {
    n = read(errpipe[0], &child_err, sizeof child_err);
  } while (n < 0 && errno == EINTR);
  close(errpipe[0]);
  if (n == sizeof child_err) {
    waitpid(pid, nullptr, 0);
    return Status::FromErrno(child_err, "exec " + argv[0]);
  }
  return pid;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  waitpid(pid, nullptr, WNOHANG);  // reap if it is our child
  if (kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return false;
  size_t rp = line.rfind(')');
  if (rp == std::string::npos || rp + 2 >= line.size()) return false;
  char state = line[rp + 2];
  return state != 'Z' && state != 'X';
}

bool ProcessRuns(pid_t pid, const std::string& name) {
  if (!ProcessAlive(pid)) return false;
  std::error_code ec;
  std::string exe = fs::read_symlink("/proc/" + std::to_string(pid) + "/exe", ec).filename().string();
  if (!ec && exe.rfind(name, 0) == 0) return true;  // also "cfs-meta (deleted)" after a rebuild
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string c;
  std::getline(comm, c);
  return c == name.substr(0, 15);
}

pid_t ReadPidFile(const std::string& path) {
  std::ifstream f(path);
  long pid = 0;
  if (!(f >> pid) || pid <= 0 || pid > 1 << 22) return 0;
  return static_cast<pid_t>(pid);
}

Status WriteFileAtomic(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::FromErrno(errno, "create " + tmp);
  bool ok = write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = fsync(fd) == 0 && ok;
  int e = errno;
  close(fd);
  if (!ok) return Status::FromErrno(e ? e : EIO, "write " + tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno(errno, "rename to " + path);
  return Status::OK();
}

Result<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream f(path);
  if (!f) return Status::FromErrno(errno ? errno : ENOENT, "read " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<pid_t> StopProcesses(const std::vector<pid_t>& pids, std::chrono::milliseconds grace) {
  for (pid_t p : pids)
    if (ProcessAlive(p)) kill(p, SIGTERM);
  auto deadline = std::chrono::steady_clock::now() + grace;
  auto any_alive = [&] {
    for (pid_t p : pids)
      if (ProcessAlive(p)) return true;
    return false;
  };
  while (any_alive() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::vector<pid_t> killed;
  for (pid_t p : pids) {
    if (ProcessAlive(p)) {
      kill(p, SIGKILL);
      killed.push_back(p);
    }
  }
  for (int i = 0; i < 500 && any_alive(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return killed;
}

int RunProgram(const std::vector<std::string>& argv, std::string* output) {
  int pfd[2];
  if (pipe2(pfd, O_CLOEXEC) != 0) return -1;
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int nullfd = open("/dev/null", O_RDONLY);
    dup2(nullfd, 0);
    dup2(pfd[1], 1);
    dup2(pfd[1], 2);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(pfd[1]);
  char buf[4096];
  ssize_t n;
  while ((n = read(pfd[0], buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
    if (n > 0 && output) output->append(buf, n);
  close(pfd[0]);
  int st = 0;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Result<std::vector<uint16_t>> FreePorts(size_t n, const std::string& host) {
  in_addr ip{};
  if (inet_pton(AF_INET, host.c_str(), &ip) != 1) return Status::Invalid("'" + host + "' is not an IPv4 address");
  std::vector<int> fds;
  std::vector<uint16_t> ports;
  Status err;
  for (size_t i = 0; i < n && err.ok(); i++) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = Status::FromErrno(errno, "socket");
      break;
    }
    fds.push_back(fd);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr = ip;
    socklen_t len = sizeof a;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      err = Status::FromErrno(errno, "bind " + host + ":0");
      break;
    }
    ports.push_back(ntohs(a.sin_port));
  }
  for (int fd : fds) close(fd);
  if (!err.ok()) return err;
  return ports;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string TailFile(const std::string& path, size_t lines, uint64_t from) {
  auto content = ReadWholeFile(path);
  if (!content.ok()) return "";
  const std::string s = from < content->size() ? content->substr(from) : std::string();
  size_t pos = s.size();
  if (pos > 0 && s[pos - 1] == '\n') pos--;
  for (size_t seen = 0; pos > 0; pos--) {
    if (s[pos - 1] == '\n' && ++seen == lines) break;
  }
  return s.substr(pos);
}

}  // namespace cfs::tools
