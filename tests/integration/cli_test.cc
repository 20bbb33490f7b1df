// The cfs CLI and the local cluster launcher against a real cluster: 1 cfs-meta,
// 6 cfs-storage and a cfs-fuse mount started by `cfs local up`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "integration/cluster_fixture.h"

namespace cfs::test {
namespace {

using nlohmann::json;

// cfs::test::Run under a name that testing::Test::Run does not hide in TEST_F bodies.
int Sh(const std::string& cmd, std::string* out = nullptr) { return Run(cmd, out); }

// Runs `cfs ARGS` with stderr dropped (stdout only, for --json) and parses it.
json CfsJson(const LocalCluster& c, const std::string& args, int* rc = nullptr) {
  std::string out;
  int r = Sh("(" + Bin("cfs") + " " + args + " --cluster " + c.MetaAddr() + " 2>/dev/null)", &out);
  if (rc) *rc = r;
  json j = json::parse(out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "cfs " << args << " printed no JSON: " << out;
  return j;
}

json ReadJsonFile(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return json::parse(ss.str(), nullptr, false);
}

// Gone or a zombie (daemons are not our children; nobody may reap them).
bool Gone(pid_t pid) {
  std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(st, line)) return true;
  size_t rp = line.rfind(')');
  return rp == std::string::npos || rp + 2 >= line.size() || line[rp + 2] == 'Z';
}

int Count(const std::string& hay, const std::string& needle) {
  int n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) n++;
  return n;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(cluster_.Up(), ""); }
  LocalCluster cluster_;
};

TEST_F(CliTest, StatusDfWorkersTablesAndJson) {
  std::string out;
  ASSERT_EQ(cluster_.Cfs("status", &out), 0) << out;
  EXPECT_NE(out.find("6 up, 0 down"), std::string::npos) << out;
  EXPECT_NE(out.find("default layout"), std::string::npos) << out;
  EXPECT_NE(out.find("6+0 unit=1 MiB"), std::string::npos) << out;

  int rc = -1;
  json st = CfsJson(cluster_, "status --json", &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(st["workers"]["up"], 6);
  EXPECT_EQ(st["workers"]["down"], 0);
  EXPECT_EQ(st["targets"]["up"], 6);
  EXPECT_GT(st["capacity"].get<uint64_t>(), 0u);
  EXPECT_GE(st["epoch"].get<uint64_t>(), 1u);
  EXPECT_EQ(st["default_layout"]["k"], 6);
  EXPECT_EQ(st["default_layout"]["unit"], 1 << 20);
  EXPECT_GE(st["directories"].get<uint64_t>(), 1u);  // the root

  ASSERT_EQ(cluster_.Cfs("workers", &out), 0) << out;
  EXPECT_NE(out.find("6 workers, 6 up, 0 down"), std::string::npos) << out;
  EXPECT_EQ(Count(out, "127.0.0.1:"), 6) << out;
  json ws = CfsJson(cluster_, "workers --json", &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(ws["workers"].size(), 6u) << ws.dump();
  std::set<std::string> addrs;
  json cfg = ReadJsonFile(cluster_.dir() + "/cluster.json");
  std::set<std::string> want;
  for (auto& p : cfg["worker_ports"]) want.insert("127.0.0.1:" + std::to_string(p.get<int>()));
  for (auto& w : ws["workers"]) {
    EXPECT_TRUE(w["up"].get<bool>()) << w.dump();
    EXPECT_EQ(w["targets"].size(), 1u) << w.dump();
    EXPECT_LT(w["last_heartbeat_ms_ago"].get<int64_t>(), 10000) << w.dump();
    addrs.insert(w["address"].get<std::string>());
  }
  EXPECT_EQ(addrs, want);

  ASSERT_EQ(cluster_.Cfs("df", &out), 0) << out;
  EXPECT_NE(out.find("total"), std::string::npos) << out;
  EXPECT_EQ(Count(out, "storage-"), 6) << out;  // one row per target, with its path
  json df = CfsJson(cluster_, "df --json", &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_EQ(df["targets"].size(), 6u);
  uint64_t cap = 0, free = 0;
  for (auto& t : df["targets"]) {
    cap += t["capacity"].get<uint64_t>();
    free += t["free"].get<uint64_t>();
    EXPECT_EQ(t["used"].get<uint64_t>() + t["free"].get<uint64_t>(), t["capacity"].get<uint64_t>());
  }
  EXPECT_EQ(df["total"]["capacity"].get<uint64_t>(), cap);
  EXPECT_EQ(df["total"]["free"].get<uint64_t>(), free);
}

TEST_F(CliTest, GetstripeOfFileShowsSixDistinctTargets) {
  const uint64_t size = 13 * (1 << 20) + 12345;  // more than two full stripes
  ASSERT_TRUE(WritePatternFile(cluster_.Path("spread"), size, 7));
  int rc = -1;
  json g = CfsJson(cluster_, "getstripe " + cluster_.Path("spread") + " --json", &rc);
  ASSERT_EQ(rc, 0) << g.dump();
  EXPECT_EQ(g["path"], "/spread");
  EXPECT_EQ(g["type"], "file");
  EXPECT_EQ(g["layout"]["k"], 6);
  EXPECT_EQ(g["layout"]["m"], 0);
  EXPECT_EQ(g["layout"]["unit"], 1 << 20);
  std::set<uint32_t> targets;
  for (auto& t : g["layout"]["targets"]) targets.insert(t.get<uint32_t>());
  EXPECT_EQ(targets.size(), 6u) << g.dump();
  EXPECT_EQ(CheckPatternFile(cluster_.Path("spread"), size, 7), "");

  // Without --cluster: the cluster is found from the mount holding the path.
  std::string out;
  ASSERT_EQ(Sh("env -u CFS_CLUSTER " + Bin("cfs") + " getstripe " + cluster_.Path("spread"), &out), 0) << out;
  EXPECT_NE(out.find("data units (k)    6"), std::string::npos) << out;
  EXPECT_NE(out.find("6 (6 distinct)"), std::string::npos) << out;
  // An absolute path inside CFS with --cluster works too.
  ASSERT_EQ(cluster_.Cfs("getstripe /spread", &out), 0) << out;
  EXPECT_NE(out.find("6 (6 distinct)"), std::string::npos) << out;
  EXPECT_EQ(cluster_.Cfs("getstripe /no-such-file", &out), 1) << out;
  EXPECT_NE(out.find("ENOENT"), std::string::npos) << out;
}

TEST_F(CliTest, SetstripeGivesNewFilesThatLayout) {
  ASSERT_EQ(mkdir(cluster_.Path("narrow").c_str(), 0755), 0);
  std::string out;
  ASSERT_EQ(cluster_.Cfs("setstripe --unit 256K --count 3 " + cluster_.Path("narrow"), &out), 0) << out;
  int rc = -1;
  json d = CfsJson(cluster_, "getstripe --json " + cluster_.Path("narrow"), &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(d["type"], "directory");
  // The directory's own default shows once the M-worker reports it in the
  // directory's attributes; until then getstripe says it shows the cluster's.
  if (!d["inherited"].get<bool>()) {
    EXPECT_EQ(d["layout"]["k"], 3) << d.dump();
    EXPECT_EQ(d["layout"]["unit"], 256 * 1024) << d.dump();
  }

  const uint64_t size = 5 * 256 * 1024 + 99;
  ASSERT_TRUE(WritePatternFile(cluster_.Path("narrow/f"), size, 11));
  json f = CfsJson(cluster_, "getstripe --json " + cluster_.Path("narrow/f"), &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_EQ(f["layout"]["k"], 3) << f.dump();
  EXPECT_EQ(f["layout"]["m"], 0) << f.dump();
  EXPECT_EQ(f["layout"]["unit"], 256 * 1024) << f.dump();
  std::set<uint32_t> targets;
  for (auto& t : f["layout"]["targets"]) targets.insert(t.get<uint32_t>());
  EXPECT_GE(targets.size(), 3u) << f.dump();
  EXPECT_EQ(CheckPatternFile(cluster_.Path("narrow/f"), size, 11), "");
  // Files elsewhere keep the cluster default.
  ASSERT_TRUE(WritePatternFile(cluster_.Path("wide"), 4096, 1));
  json w = CfsJson(cluster_, "getstripe --json " + cluster_.Path("wide"), &rc);
  EXPECT_EQ(w["layout"]["k"], 6) << w.dump();

  // Parity layouts: 4+2 is taken; more parity than the code allows is refused by name.
  ASSERT_EQ(mkdir(cluster_.Path("par").c_str(), 0755), 0);
  EXPECT_EQ(cluster_.Cfs("setstripe --unit 1M --count 4 --parity 2 " + cluster_.Path("par"), &out), 0) << out;
  ASSERT_TRUE(WritePatternFile(cluster_.Path("par/f"), 5 * (1 << 20) + 3, 12));
  json pf = CfsJson(cluster_, "getstripe --json " + cluster_.Path("par/f"), &rc);
  EXPECT_EQ(pf["layout"]["k"], 4) << pf.dump();
  EXPECT_EQ(pf["layout"]["m"], 2) << pf.dump();
  EXPECT_EQ(CheckPatternFile(cluster_.Path("par/f"), 5 * (1 << 20) + 3, 12), "");
  EXPECT_NE(cluster_.Cfs("setstripe --unit 1M --count 4 --parity 5 " + cluster_.Path("par"), &out), 0) << out;
  EXPECT_NE(out.find("parity"), std::string::npos) << out;
  // A file is not a directory.
  EXPECT_EQ(cluster_.Cfs("setstripe --unit 1M --count 2 " + cluster_.Path("wide"), &out), 1) << out;
  EXPECT_NE(out.find("ENOTDIR"), std::string::npos) << out;
}

TEST_F(CliTest, LocalUpTwiceKeepsDataAndRefusesChangedSettings) {
  const uint64_t size = 9 * (1 << 20) + 777;
  ASSERT_TRUE(WritePatternFile(cluster_.Path("keep"), size, 42));
  ASSERT_EQ(mkdir(cluster_.Path("dir").c_str(), 0755), 0);
  std::string addr = cluster_.MetaAddr();
  pid_t meta = cluster_.MetaPid();

  // `up` on a running cluster changes nothing and succeeds.
  ASSERT_EQ(cluster_.Up(), "");
  EXPECT_EQ(cluster_.MetaPid(), meta);

  ASSERT_EQ(cluster_.Down(), "");
  EXPECT_FALSE(std::ifstream(cluster_.dir() + "/run/meta.pid").good());
  EXPECT_TRUE(Gone(meta));
  struct stat st;
  EXPECT_NE(stat(cluster_.Path("keep").c_str(), &st), 0);  // unmounted
  std::string out;
  EXPECT_EQ(Sh(Bin("cfs") + " local down --dir " + cluster_.dir(), &out), 0) << "down twice: " << out;

  // Settings differ from the stored ones: refused, exit 2, nothing started.
  std::string up = Bin("cfs") + " local up --dir " + cluster_.dir();
  EXPECT_EQ(Sh(up + " --stripe 3+0", &out), 2) << out;
  EXPECT_NE(out.find("--stripe"), std::string::npos) << out;
  EXPECT_EQ(Sh(up + " --workers 4", &out), 2) << out;
  EXPECT_NE(out.find("shrink"), std::string::npos) << out;
  EXPECT_EQ(Sh(up + " --unit 4M", &out), 2) << out;
  EXPECT_FALSE(std::ifstream(cluster_.dir() + "/run/meta.pid").good());

  ASSERT_EQ(cluster_.Up(), "");  // same flags as the first time
  EXPECT_EQ(cluster_.MetaAddr(), addr);
  EXPECT_EQ(CheckPatternFile(cluster_.Path("keep"), size, 42), "");
  ASSERT_EQ(stat(cluster_.Path("dir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  int rc = -1;
  json ws = CfsJson(cluster_, "workers --json", &rc);
  ASSERT_EQ(ws["workers"].size(), 6u);
  for (auto& w : ws["workers"]) EXPECT_TRUE(w["up"].get<bool>()) << w.dump();

  ASSERT_EQ(Sh(Bin("cfs") + " local status --dir " + cluster_.dir(), &out), 0) << out;
  EXPECT_EQ(Count(out, "running"), 8) << out;  // meta, 6 workers, fuse
  EXPECT_NE(out.find("mounted"), std::string::npos) << out;
}

TEST_F(CliTest, StartWorkerAfterKill9) {
  json cfg = ReadJsonFile(cluster_.dir() + "/cluster.json");
  std::string addr = "127.0.0.1:" + std::to_string(cfg["worker_ports"][2].get<int>());
  ASSERT_TRUE(WritePatternFile(cluster_.Path("before"), 3 << 20, 5));
  pid_t old = cluster_.WorkerPid(2);
  ASSERT_GT(old, 0);
  LocalCluster::KillAndWait(old, SIGKILL);

  // The M-worker notices the silence and `cfs workers` shows it down.
  bool seen_down = false;
  for (int i = 0; i < 300 && !seen_down; i++) {
    json ws = CfsJson(cluster_, "workers --json");
    for (auto& w : ws["workers"])
      if (w["address"] == addr && !w["up"].get<bool>()) seen_down = true;
    if (!seen_down) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(seen_down) << "worker 2 never shown down after kill -9";
  std::string out;
  ASSERT_EQ(cluster_.Cfs("workers", &out), 0);
  EXPECT_NE(out.find("DOWN"), std::string::npos) << out;

  ASSERT_EQ(cluster_.StartWorker(2), "");
  EXPECT_NE(cluster_.WorkerPid(2), old);
  json ws = CfsJson(cluster_, "workers --json");
  int up = 0;
  for (auto& w : ws["workers"]) {
    up += w["up"].get<bool>();
    if (w["address"] == addr) {
      EXPECT_TRUE(w["up"].get<bool>()) << w.dump();
    }
  }
  EXPECT_EQ(up, 6) << ws.dump();
  EXPECT_EQ(CheckPatternFile(cluster_.Path("before"), 3 << 20, 5), "");

  // An index the cluster does not have is a usage error.
  EXPECT_EQ(Sh(Bin("cfs") + " local start-worker --dir " + cluster_.dir() + " 6", &out), 2) << out;
}

// Command-line errors need no cluster: exit 2 and say what is wrong.
TEST(CliUsage, BadOptionsExitTwoWithMessage) {
  std::string out;
  EXPECT_EQ(Sh(Bin("cfs") + " status --bogus", &out), 2);
  EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " frobnicate", &out), 2);
  EXPECT_NE(out.find("frobnicate"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local frobnicate --dir /tmp/x", &out), 2);
  EXPECT_NE(out.find("unknown command 'frobnicate'"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs"), &out), 2) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " setstripe --unit 3M --count 2 /x --cluster 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("unit"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " setstripe --unit lots --count 2 /x --cluster 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("--unit"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " setstripe --unit 1M /x --cluster 127.0.0.1:1", &out), 2);
  EXPECT_NE(out.find("--count"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " workers --timeout zero --cluster 127.0.0.1:1", &out), 2) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir /tmp/x --mount /tmp/y --transport udp", &out), 2);
  EXPECT_NE(out.find("--transport"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir /tmp/x --mount /tmp/y --stripe 4-2", &out), 2);
  EXPECT_NE(out.find("stripe"), std::string::npos) << out;
  EXPECT_EQ(Sh(Bin("cfs") + " local up --mount /tmp/y", &out), 2);
  EXPECT_NE(out.find("--dir"), std::string::npos) << out;
  // No cluster anywhere (not in flags, environment, or the current directory).
  EXPECT_EQ(Sh("cd / && env -u CFS_CLUSTER " + Bin("cfs") + " status", &out), 2);
  EXPECT_NE(out.find("--cluster"), std::string::npos) << out;
  // --help answers on every level.
  for (const char* cmd : {"", "status", "df", "workers", "getstripe", "setstripe", "local", "local up",
                          "local down", "local start-worker", "local status"}) {
    EXPECT_EQ(Sh(Bin("cfs") + " " + cmd + " --help", &out), 0) << cmd;
    EXPECT_NE(out.find("Usage:"), std::string::npos) << cmd << ": " << out;
  }
}

TEST(CliUsage, UnreachableClusterAndRdmaFailClearly) {
  std::string out;
  EXPECT_EQ(Sh(Bin("cfs") + " status --timeout 3 --cluster 127.0.0.1:1", &out), 1);
  EXPECT_NE(out.find("127.0.0.1:1"), std::string::npos) << out;
  char tmpl[] = "/tmp/cfs-cli-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  EXPECT_EQ(Sh(Bin("cfs") + " local up --dir " + dir + " --mount " + dir + "/mnt --transport rdma", &out), 1);
  EXPECT_NE(out.find("RDMA"), std::string::npos) << out;
  EXPECT_FALSE(std::ifstream(dir + "/run/meta.pid").good());
  Sh("rm -rf " + dir);
}

}  // namespace
}  // namespace cfs::test
