// The `transport = tcp | rdma | auto` setting through every program (issue 5,
// point 1): cfs local up --transport/--bind, cfs-storage, cfs-fuse, the CLI
// and `cfs status`. These run on a machine WITHOUT RDMA (the CI host): auto
// must fall back to TCP and say so, rdma must fail fast and start nothing.
// The RDMA side runs in the Soft-RoCE guest (tests/rdma, label rdma).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "integration/cluster_fixture.h"
#include "integration/test_util.h"
#include "rpc/rdma_transport.h"

namespace cfs::test {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

int Sh(const std::string& cmd, std::string* out = nullptr) { return Run(cmd, out); }

int Count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) n++;
  return n;
}

json ParseJson(const std::string& s) { return json::parse(s, nullptr, false); }

// `cfs ARGS --cluster META` with stdout only, parsed.
json CfsJson(const LocalCluster& c, const std::string& args) {
  std::string out;
  Sh("(" + Bin("cfs") + " " + args + " --cluster " + c.MetaAddr() + " 2>/dev/null)", &out);
  json j = ParseJson(out);
  EXPECT_FALSE(j.is_discarded()) << "cfs " << args << " printed no JSON: " << out;
  return j;
}

// This file checks the no-RDMA behaviour; on a machine with usable RDMA the
// expectations differ (the guest suite covers that), so say so and fail.
std::string NoRdmaHere() {
  Status st = rpc::RdmaUsable();
  if (st.ok())
    return "this machine has usable RDMA; transport_select_test checks the fall-back and the "
           "errors of a machine without it (run the rdma-labelled suite here instead)";
  return "";
}

// Processes whose command line mentions `needle` (daemons of one test dir).
std::vector<int> ProcessesMentioning(const std::string& needle) {
  std::vector<int> pids;
  for (const auto& e : fs::directory_iterator("/proc")) {
    std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmd = ReadFileStr(e.path().string() + "/cmdline");
    for (char& ch : cmd)
      if (ch == '\0') ch = ' ';
    if (cmd.find(needle) != std::string::npos && ProcessAlive(std::stoi(name))) pids.push_back(std::stoi(name));
  }
  return pids;
}

// Local addresses of listening TCP sockets ("127.0.0.2:4000"), from /proc/net/tcp.
std::set<std::string> ListeningTcp() {
  std::set<std::string> out;
  std::ifstream f("/proc/net/tcp");
  std::string line;
  std::getline(f, line);  // header
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string sl, local, remote, state;
    ls >> sl >> local >> remote >> state;
    if (state != "0A") continue;  // LISTEN
    unsigned ip = 0, port = 0;
    if (std::sscanf(local.c_str(), "%8X:%4X", &ip, &port) != 2) continue;
    // The address is in network order printed as a host-order number.
    out.insert(std::to_string(ip & 0xff) + "." + std::to_string((ip >> 8) & 0xff) + "." +
               std::to_string((ip >> 16) & 0xff) + "." + std::to_string(ip >> 24) + ":" + std::to_string(port));
  }
  return out;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/cfs-transport-XXXXXX";
    char* d = mkdtemp(tmpl);
    path_ = d ? d : "/tmp/cfs-transport-failed";
  }
  ~TempDir() { Sh("rm -rf '" + path_ + "'"); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// (a) auto on a host without RDMA: everything on TCP, said in cluster.json,
// the logs and `cfs status`; data byte-exact; a restart with another
// transport or address is refused.
TEST(TransportSelect, LocalAutoFallsBackToTcpAndSaysSo) {
  ASSERT_EQ(NoRdmaHere(), "");
  ClusterOptions o;
  o.stripe = "4+2";
  o.extra_args = {"--transport auto"};
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");

  json cfg = ParseJson(ReadFileStr(c.dir() + "/cluster.json"));
  EXPECT_EQ(cfg["transport"], "auto") << cfg.dump();
  EXPECT_EQ(cfg["bind"], "127.0.0.1") << cfg.dump();

  // Data through the mount (4+2 parity: S-workers over the data path), 13 MiB + a tail.
  const uint64_t size = 13 * (1 << 20) + 4321;
  ASSERT_TRUE(WritePatternFile(c.Path("auto-data"), size, 51));
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(c.Path("auto-data"), size, 51), "");

  // cfs status: per S-worker what it serves and what this client reached it over.
  std::string out;
  ASSERT_EQ(c.Cfs("status --transport auto", &out), 0) << out;
  EXPECT_EQ(Count(out, "serves tcp, reached over tcp"), 6) << out;
  EXPECT_NE(out.find("auto (this client); S-workers: 6 over tcp"), std::string::npos) << out;
  json st = CfsJson(c, "status --json --transport auto");
  EXPECT_EQ(st["transport"], "auto");
  ASSERT_EQ(st["data_paths"].size(), 6u) << st.dump();
  for (auto& p : st["data_paths"]) {
    EXPECT_EQ(p["serves"], "tcp") << p.dump();
    EXPECT_EQ(p["reached_over"], "tcp") << p.dump();
  }
  // The CLI's default (auto, unless $CFS_TRANSPORT) and an explicit tcp.
  ASSERT_EQ(Sh("env -u CFS_TRANSPORT " + Bin("cfs") + " workers --cluster " + c.MetaAddr(), &out), 0) << out;
  EXPECT_EQ(Count(out, "tcp"), 12) << out;  // SERVES and REACHED OVER of 6 workers
  json ws = CfsJson(c, "workers --json --transport tcp");
  EXPECT_EQ(ws["transport"], "tcp");
  for (auto& w : ws["workers"]) {
    EXPECT_EQ(w["transport"], "tcp") << w.dump();
    EXPECT_EQ(w["reached_over"], "tcp") << w.dump();
  }

  // Logs: S-workers say what they serve and why not RDMA; the mount says its choice.
  for (int i = 0; i < 6; i++) {
    std::string log = ReadFileStr(c.dir() + "/log/storage-" + std::to_string(i) + ".log");
    EXPECT_NE(log.find("serving tcp (--transport auto)"), std::string::npos) << log;
    EXPECT_NE(log.find("--transport auto: serving TCP only: "), std::string::npos) << log;
  }
  std::string fuse_log = ReadFileStr(c.dir() + "/log/fuse.log");
  EXPECT_NE(fuse_log.find("transport auto: using TCP only"), std::string::npos) << fuse_log;

  // `cfs local status` shows the transport and the address.
  ASSERT_EQ(Sh(Bin("cfs") + " local status --dir " + c.dir(), &out), 0) << out;
  EXPECT_NE(out.find("transport auto, bind 127.0.0.1"), std::string::npos) << out;

  // Another transport or address on the same DIR is refused; nothing changes.
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + c.dir() + " --transport tcp", &out), 2) << out;
  EXPECT_NE(out.find("--transport auto"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + c.dir() + " --bind 127.0.0.3", &out), 2) << out;
  EXPECT_NE(out.find("--bind 127.0.0.1"), std::string::npos) << out;
  // Without the flags it comes back as it was (all daemons already running).
  ASSERT_EQ(Sh(Bin("cfs") + " local up --dir " + c.dir(), &out), 0) << out;
  EXPECT_NE(out.find("transport     auto: S-workers serve tcp (6); this machine reaches them over tcp (6)"),
            std::string::npos)
      << out;
  EXPECT_EQ(CheckPatternFile(c.Path("auto-data"), size, 51), "");
}

// (b) rdma where there is none: a clear error before anything starts, from the
// launcher, cfs-storage, cfs-fuse and the CLI alike.
TEST(TransportSelect, RdmaWithoutDeviceFailsFastAndStartsNothing) {
  ASSERT_EQ(NoRdmaHere(), "");
  TempDir d;
  std::string out;
  auto t0 = std::chrono::steady_clock::now();
  int rc = RunWithTimeout(60, Bin("cfs") + " local up --dir " + d.path() + "/c --mount " + d.path() +
                                  "/mnt --transport rdma --workers 3",
                          &out);
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(rc, 1) << out;
  EXPECT_LT(secs, 20) << "not fast: " << out;
  EXPECT_NE(out.find("cannot bring the cluster up with --transport rdma"), std::string::npos) << out;
  EXPECT_NE(out.find("RDMA is not usable on this machine: "), std::string::npos) << out;
  EXPECT_NE(out.find("--bind 127.0.0.1 is a loopback address"), std::string::npos) << out;
  EXPECT_NE(out.find("nothing was started"), std::string::npos) << out;
  EXPECT_TRUE(ProcessesMentioning(d.path() + "/c").empty());
  EXPECT_FALSE(fs::exists(d.path() + "/c/cluster.json"));
  EXPECT_FALSE(fs::exists(d.path() + "/c/run/meta.pid"));

  // cfs-storage: the transport's error on stderr, exit 1, before it touches its target.
  fs::create_directories(d.path() + "/t");
  rc = RunWithTimeout(30, Bin("cfs-storage") + " --transport rdma --meta 127.0.0.1:1 --target " + d.path() + "/t",
                      &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("cfs-storage: --transport rdma: "), std::string::npos) << out;
  EXPECT_TRUE(ListDir(d.path() + "/t").empty()) << "the target was set up before the transport failed";

  // cfs-fuse: names the transport, not the M-worker.
  fs::create_directories(d.path() + "/m");
  rc = RunWithTimeout(30, Bin("cfs-fuse") + " 127.0.0.1:1 " + d.path() + "/m -f -o transport=rdma", &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("data transport rdma: "), std::string::npos) << out;
  EXPECT_EQ(out.find("cannot reach M-worker"), std::string::npos) << out;

  // The CLI where it talks to S-workers.
  rc = RunWithTimeout(30, Bin("cfs") + " status --transport rdma --cluster 127.0.0.1:1", &out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("--transport rdma: "), std::string::npos) << out;
}

// (c) --bind places every daemon (M-worker, S-workers, metrics) on that address.
TEST(TransportSelect, BindPlacesAllDaemons) {
  ClusterOptions o;
  o.workers = 3;
  o.stripe = "3+0";
  o.extra_args = {"--bind 127.0.0.2"};
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  json cfg = ParseJson(ReadFileStr(c.dir() + "/cluster.json"));
  EXPECT_EQ(cfg["bind"], "127.0.0.2") << cfg.dump();
  EXPECT_EQ(cfg["transport"], "tcp") << cfg.dump();
  EXPECT_EQ(c.MetaAddr(), "127.0.0.2:" + std::to_string(cfg["meta_port"].get<int>()));

  std::set<std::string> listening = ListeningTcp();
  std::vector<int> ports = {cfg["meta_port"].get<int>(), cfg["meta_metrics_port"].get<int>()};
  for (auto& p : cfg["worker_ports"]) ports.push_back(p.get<int>());
  for (auto& p : cfg["worker_metrics_ports"]) ports.push_back(p.get<int>());
  ASSERT_EQ(ports.size(), 8u);
  for (int p : ports) {
    EXPECT_TRUE(listening.count("127.0.0.2:" + std::to_string(p))) << "nothing listens on 127.0.0.2:" << p;
    EXPECT_FALSE(listening.count("127.0.0.1:" + std::to_string(p))) << "127.0.0.1:" << p << " is used";
    EXPECT_FALSE(listening.count("0.0.0.0:" + std::to_string(p))) << "0.0.0.0:" << p << " is used";
  }
  // The M-worker hands out the S-workers at that address.
  json ws = CfsJson(c, "workers --json");
  ASSERT_EQ(ws["workers"].size(), 3u) << ws.dump();
  for (auto& w : ws["workers"]) {
    EXPECT_EQ(w["address"].get<std::string>().rfind("127.0.0.2:", 0), 0u) << w.dump();
    EXPECT_EQ(w["reached_over"], "tcp") << w.dump();
  }
  std::string out;
  ASSERT_EQ(c.Cfs("status", &out), 0) << out;
  EXPECT_EQ(Count(out, "127.0.0.2:"), 3) << out;
  ASSERT_EQ(Sh(Bin("cfs") + " local status --dir " + c.dir(), &out), 0) << out;
  EXPECT_EQ(Count(out, "127.0.0.2:"), 4) << out;  // cfs-meta and 3 S-workers
  const uint64_t size = 5 * (1 << 20) + 77;
  ASSERT_TRUE(WritePatternFile(c.Path("bound"), size, 8));
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(c.Path("bound"), size, 8), "");
  // Every daemon stops on SIGTERM at that address too (the metrics server
  // once woke its accept loop on 127.0.0.1 only and hung).
  ASSERT_EQ(Sh(Bin("cfs") + " local down --dir " + c.dir(), &out), 0) << out;
  EXPECT_EQ(out.find("did not stop on SIGTERM"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped 3 cfs-storage"), std::string::npos) << out;
  EXPECT_NE(out.find("stopped 1 cfs-meta"), std::string::npos) << out;
}

// (d) A transport name nobody knows is a clear command-line error everywhere.
TEST(TransportSelect, UnknownTransportIsAUsageError) {
  TempDir d;
  std::string out;
  EXPECT_EQ(Sh(Bin("cfs-storage") + " --transport bogus --meta 127.0.0.1:1 --target " + d.path() + "/t", &out), 2);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
  ASSERT_TRUE(WriteFileStr(d.path() + "/storage.toml", "transport = \"bogus\"\nmeta = \"127.0.0.1:1\"\n"));
  EXPECT_EQ(Sh(Bin("cfs-storage") + " --config " + d.path() + "/storage.toml --target " + d.path() + "/t", &out), 2);
  EXPECT_NE(out.find("bogus"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(d.path() + "/t"));

  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + d.path() + "/c --mount " + d.path() + "/m --transport bogus", &out), 2);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + d.path() + "/c --mount " + d.path() + "/m --bind nowhere", &out), 2);
  EXPECT_NE(out.find("--bind nowhere"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + d.path() + "/c --mount " + d.path() + "/m --bind 0.0.0.0", &out), 2);
  EXPECT_NE(out.find("--bind 0.0.0.0"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + d.path() + "/c --mount " + d.path() + "/m --bind 192.0.2.77", &out), 2);
  EXPECT_NE(out.find("no interface of this machine has that address"), std::string::npos) << out;
  EXPECT_TRUE(ProcessesMentioning(d.path() + "/c").empty());

  EXPECT_EQ(Sh(Bin("cfs") + " status --transport bogus --cluster 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  EXPECT_EQ(Sh("CFS_TRANSPORT=bogus " + Bin("cfs") + " status --cluster 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("CFS_TRANSPORT=bogus"), std::string::npos) << out;
  fs::create_directories(d.path() + "/m");
  EXPECT_EQ(Sh(Bin("cfs-fuse") + " 127.0.0.1:1 " + d.path() + "/m -f -o transport=bogus", &out), 2);
  EXPECT_NE(out.find("transport=bogus"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs-fuse") + " 127.0.0.1:1 " + d.path() + "/m -f -o rdma_device=", &out), 2);
  EXPECT_NE(out.find("rdma_device"), std::string::npos) << out;

  // --help explains the options.
  ASSERT_EQ(Sh(Bin("cfs-storage") + " --help", &out), 0);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  EXPECT_NE(out.find("--rdma-device"), std::string::npos) << out;
  EXPECT_NE(out.find("RLIMIT_MEMLOCK"), std::string::npos) << out;
  ASSERT_EQ(Sh(Bin("cfs") + " local up --help", &out), 0);
  EXPECT_NE(out.find("--bind"), std::string::npos) << out;
  EXPECT_NE(out.find("tcp|rdma|auto"), std::string::npos) << out;
  ASSERT_EQ(Sh(Bin("cfs") + " status --help", &out), 0);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  ASSERT_EQ(Sh(Bin("cfs-fuse") + " --help", &out), 0);
  EXPECT_NE(out.find("transport=tcp|rdma|auto, rdma_device=NAME"), std::string::npos) << out;
}

}  // namespace
}  // namespace cfs::test
