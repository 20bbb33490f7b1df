// cfs-fuse: mounts a CFS cluster through the libfuse low-level API.
//
// Start-up order matters for clear errors: arguments, then the M-worker, then
// the mount; only once the mount exists does the parent return 0 to the
// terminal (or to mount(8)). We fork before any thread exists (the client
// library starts I/O threads) rather than with fuse_daemonize() afterwards, and
// the child reports success or failure to the waiting parent through a pipe.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/logging.h"
#include "fuse_args.h"
#include "fuse_ops.h"
#include "kernel_readahead.h"

namespace {

int Fail(const std::string& msg) {
  fprintf(stderr, "cfs-fuse: %s\n", msg.c_str());
  return 1;
}

// A bad command line or option: exit 2, as the other CFS programs do.
constexpr int kExitUsage = 2;
int UsageError(const std::string& msg) {
  Fail(msg);
  return kExitUsage;
}

// Parent side of the fork: waits for the child's "mounted" byte.
[[noreturn]] void WaitForChild(pid_t child, int rfd) {
  char b = 0;
  ssize_t n;
  do {
    n = read(rfd, &b, 1);
  } while (n < 0 && errno == EINTR);
  if (n == 1) _exit(0);
  int st = 0;
  while (waitpid(child, &st, 0) < 0 && errno == EINTR) {
  }
  _exit(WIFEXITED(st) && WEXITSTATUS(st) != 0 ? WEXITSTATUS(st) : 1);
}

void Detach(int wfd) {
  setsid();
  if (chdir("/") != 0) {
  }
  int nullfd = open("/dev/null", O_RDWR);
  if (nullfd >= 0) {
    dup2(nullfd, 0);
    dup2(nullfd, 1);
    dup2(nullfd, 2);
    if (nullfd > 2) close(nullfd);
  }
  char b = 1;
  if (write(wfd, &b, 1) != 1) {
  }
  close(wfd);
}

// Libfuse's handlers end the session loop; only the main thread may take
// these signals, so threads started meanwhile (the client's) must not.
void BlockExitSignals(int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGQUIT);
  pthread_sigmask(how, &set, nullptr);
}

// A stop signal first tells the client to stop retrying an unreachable
// M-worker, then runs libfuse's handler (which ends the session loop). Without
// the first step the loop would wait for every request in flight to exhaust its
// retries before it returns.
constexpr int kExitSignals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
std::atomic<cfs::client::Client*> g_client{nullptr};
struct sigaction g_fuse_handlers[std::size(kExitSignals)];

void OnExitSignal(int sig) {
  if (cfs::client::Client* c = g_client.load()) c->LimitRetries(std::chrono::milliseconds(0));
  for (size_t i = 0; i < std::size(kExitSignals); i++) {
    if (kExitSignals[i] == sig && g_fuse_handlers[i].sa_handler != SIG_DFL &&
        g_fuse_handlers[i].sa_handler != SIG_IGN)
      g_fuse_handlers[i].sa_handler(sig);
  }
}

// Call after fuse_set_signal_handlers: wraps libfuse's handlers.
void ChainExitSignals(cfs::client::Client* c) {
  g_client = c;
  for (size_t i = 0; i < std::size(kExitSignals); i++) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = OnExitSignal;
    sigemptyset(&sa.sa_mask);
    sigaction(kExitSignals[i], &sa, &g_fuse_handlers[i]);
  }
}

// Puts libfuse's handlers back, so fuse_remove_signal_handlers recognises them.
void UnchainExitSignals() {
  for (size_t i = 0; i < std::size(kExitSignals); i++) sigaction(kExitSignals[i], &g_fuse_handlers[i], nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cfs;
  auto parsed = fuse::ParseFuseArgs(argc, argv);
  if (!parsed.ok()) {
    fprintf(stderr, "cfs-fuse: %s\n\n%s", parsed.status().message().c_str(), fuse::FuseUsage());
    return kExitUsage;
  }
  fuse::FuseArgs args = std::move(parsed).value();
  if (args.help) {
    fputs(fuse::FuseUsage(), stdout);
    return 0;
  }
  struct stat st;
  if (stat(args.mountpoint.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Fail("mountpoint " + args.mountpoint + " is not a directory");
  auto copts = client::ClientOptions::Parse(args.cluster, args.client_options);
  if (!copts.ok()) return UsageError(copts.status().message());

  // The FUSE options are checked now, before the M-worker is: a bad option is a
  // usage error whether or not the cluster answers. The session opens nothing yet.
  fuse::FuseContext ctx;
  std::vector<std::string> fargv = {"cfs-fuse"};
  if (args.debug) fargv.push_back("-d");
  for (const auto& o : args.fuse_opts) {
    std::string esc;  // libfuse splits -o values on ',' unless escaped
    for (char ch : o) {
      if (ch == ',' || ch == '\\') esc += '\\';
      esc += ch;
    }
    fargv.push_back("-o");
    fargv.push_back(esc);
  }
  std::vector<char*> cargv;
  for (auto& s : fargv) cargv.push_back(s.data());
  fuse_args fa = FUSE_ARGS_INIT(static_cast<int>(cargv.size()), cargv.data());
  fuse_session* se = fuse_session_new(&fa, fuse::CfsFuseOps(), sizeof(fuse_lowlevel_ops), &ctx);
  fuse_opt_free_args(&fa);
  if (se == nullptr) return UsageError("invalid mount options (see the libfuse message above)");

  int pipefd[2] = {-1, -1};
  if (!args.foreground) {
    if (pipe(pipefd) != 0) return Fail(std::string("pipe: ") + strerror(errno));
    pid_t pid = fork();
    if (pid < 0) return Fail(std::string("fork: ") + strerror(errno));
    if (pid > 0) {
      close(pipefd[1]);
      WaitForChild(pid, pipefd[0]);
    }
    close(pipefd[0]);
  }

  // A daemon without log=FILE has only the terminal until it detaches: keep
  // that for problems, so `mount -t cfs` stays quiet when all is well.
  std::string level = args.debug ? "debug" : args.log_level;
  if (!args.foreground && args.log_file.empty() && level != "error") level = "warn";
  InitLogging("cfs-fuse", args.log_file, level);
  BlockExitSignals(SIG_BLOCK);
  auto cl = client::Client::Connect(*copts);
  if (!cl.ok()) {
    // An unusable data transport (transport=rdma without a device, memlock
    // too low) is not the M-worker's fault: say what it is.
    if (cl.status().message().rfind("data transport ", 0) == 0) return Fail(cl.status().ToString());
    return Fail("cannot reach M-worker at " + args.cluster + ": " + cl.status().ToString());
  }
  std::unique_ptr<client::Client> client = std::move(cl).value();
  // Connect may be lazy; make sure the M-worker answers before mounting.
  auto root = client->GetAttr(FUSE_ROOT_ID);
  if (!root.ok())
    return Fail("cannot reach M-worker at " + args.cluster + ": " + root.status().ToString());

  ctx.client = client.get();
  ctx.se = se;
  if (fuse_set_signal_handlers(se) != 0) return Fail("cannot install signal handlers");
  ChainExitSignals(client.get());
  if (fuse_session_mount(se, args.mountpoint.c_str()) != 0) {
    UnchainExitSignals();
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    return Fail("cannot mount at " + args.mountpoint);
  }
  LOG_INFO("mounted cluster={} at {}", args.cluster, args.mountpoint);
  if (!args.foreground) {
    Detach(pipefd[1]);
  } else if (chdir("/") != 0) {
  }
  // 4 MiB of kernel readahead: 1 MiB READ requests, four in flight.
  std::atomic<bool> stopping{false};
  std::thread ra = fuse::RaiseReadahead(fuse::MountDevice(args.mountpoint), &ctx.initialized,
                                        &stopping, 4096);
  BlockExitSignals(SIG_UNBLOCK);

  fuse_loop_config lc;
  memset(&lc, 0, sizeof lc);
  lc.clone_fd = 0;
  lc.max_idle_threads = 16;
  int rc = fuse_session_loop_mt(se, &lc);
  LOG_INFO("unmounting {} (loop rc={})", args.mountpoint, rc);
  stopping = true;
  ra.join();
  // From here on no handler may touch the session or the client.
  BlockExitSignals(SIG_BLOCK);
  g_client = nullptr;
  fuse_session_unmount(se);
  UnchainExitSignals();
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  // Files still open are flushed now: their size reports may wait a little for
  // an M-worker that is away, but well within the grace `cfs local down` gives.
  client->LimitRetries(std::chrono::seconds(3));
  client.reset();
  // rc > 0 is the signal that ended the loop (SIGTERM etc.): a clean unmount.
  return rc >= 0 ? 0 : 1;
}
