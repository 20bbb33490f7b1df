// The foundation suite's data checks over RDMA (issue 5, point 6), in the
// Soft-RoCE guest: a local cluster started with `--transport rdma --bind
// $CFS_RDMA_ADDR` (the integration fixture reads CFS_TEST_TRANSPORT), a FUSE
// mount, 256 MiB written and read back byte-exact through FUSE and through
// libcfs, and on a 4+2 layout a degraded read with one S-worker killed.
//
// That the data really went over RDMA is checked on the device: the rxe
// driver counts packets only (hw_counters/sent_pkts, rcvd_pkts; it has no
// byte counters and no IB PMA `counters/port_*_data`), so a phase that moved
// B bytes must have sent at least B / active_mtu packets. Since every daemon
// and the client share the one rxe device, each packet is counted once sent
// and once received. Loopback TCP traffic must stay well below the bytes moved
// (/proc/net/dev "lo"): TCP between local addresses crosses lo, rxe's
// loopback does not.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <infiniband/verbs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"
#include "rpc/rdma_transport.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

std::string Env(const char* n) {
  const char* v = getenv(n);
  return v ? v : "";
}

// Where the suite runs: fails the test (not skips) unless RDMA is really here.
std::string RdmaEnvError() {
  std::string dev = Env("CFS_RDMA_DEVICE"), addr = Env("CFS_RDMA_ADDR"), t = Env("CFS_TEST_TRANSPORT");
  std::string hint = " (run it in the Soft-RoCE guest: scripts/rdma-guest/run.sh -- ctest -L rdma)";
  if (t != "rdma") return "CFS_TEST_TRANSPORT is '" + t + "', this suite checks the RDMA path: set it to rdma" + hint;
  if (dev.empty() || addr.empty()) return "CFS_RDMA_DEVICE and CFS_RDMA_ADDR must name the RDMA device and its address" + hint;
  if (access(("/sys/class/infiniband/" + dev).c_str(), F_OK) != 0) return "no RDMA device " + dev + " here" + hint;
  Status st = rpc::RdmaUsable();
  if (!st.ok()) return "RDMA not usable: " + st.ToString() + hint;
  return "";
}

uint64_t ReadU64(const std::string& path, bool* ok) {
  std::ifstream f(path);
  uint64_t v = 0;
  *ok = static_cast<bool>(f >> v);
  return v;
}

// Every readable counter of port 1 of the device, by "hw_counters/NAME" or "counters/NAME".
std::map<std::string, uint64_t> DeviceCounters(const std::string& dev) {
  std::map<std::string, uint64_t> out;
  std::string port = "/sys/class/infiniband/" + dev + "/ports/1/";
  for (const char* dir : {"hw_counters", "counters"}) {
    for (const auto& name : ListDir(port + dir)) {
      bool ok;
      uint64_t v = ReadU64(port + dir + "/" + name, &ok);
      if (ok) out[std::string(dir) + "/" + name] = v;
    }
  }
  return out;
}

// Bytes received + sent on the loopback interface (TCP between local addresses).
uint64_t LoopbackBytes() {
  std::ifstream f("/proc/net/dev");
  std::string line;
  while (std::getline(f, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    name.erase(0, name.find_first_not_of(' '));
    if (name != "lo") continue;
    std::istringstream in(line.substr(colon + 1));
    uint64_t v[9] = {};
    for (auto& x : v) in >> x;
    return v[0] + v[8];  // rx bytes, tx bytes
  }
  return 0;
}

// Active MTU of port 1 in bytes (0 if the device cannot be queried).
uint32_t ActiveMtu(const std::string& dev) {
  int n = 0;
  ibv_device** list = ibv_get_device_list(&n);
  uint32_t mtu = 0;
  for (int i = 0; list && i < n; i++) {
    if (dev != ibv_get_device_name(list[i])) continue;
    if (ibv_context* ctx = ibv_open_device(list[i])) {
      ibv_port_attr a{};
      if (ibv_query_port(ctx, 1, &a) == 0) mtu = 128u << a.active_mtu;  // IBV_MTU_256 = 1
      ibv_close_device(ctx);
    }
  }
  if (list) ibv_free_device_list(list);
  return mtu;
}

// Device and loopback counters around a phase that moves `bytes` of file data.
class PathProbe {
 public:
  PathProbe() : dev_(Env("CFS_RDMA_DEVICE")), before_(DeviceCounters(dev_)), lo_(LoopbackBytes()) {}

  // Expects the device to have sent enough packets for `bytes`; prints every
  // counter that moved.
  void ExpectMoved(const std::string& what, uint64_t bytes) {
    auto after = DeviceCounters(dev_);
    uint64_t lo = LoopbackBytes() - lo_;
    uint32_t mtu = ActiveMtu(dev_);
    ASSERT_GT(mtu, 0u) << "cannot query the active MTU of " << dev_;
    ASSERT_TRUE(after.count("hw_counters/sent_pkts")) << "no hw_counters/sent_pkts on " << dev_;
    printf("[ rdma path ] %s: %.1f MiB of file data; loopback TCP moved %.1f MiB; %s counters that grew:\n",
           what.c_str(), bytes / double(kMiB), lo / double(kMiB), dev_.c_str());
    for (const auto& [name, v] : after) {
      uint64_t d = v - (before_.count(name) ? before_[name] : 0);
      if (d) printf("    %-36s +%llu\n", name.c_str(), static_cast<unsigned long long>(d));
    }
    uint64_t sent = after["hw_counters/sent_pkts"] - before_["hw_counters/sent_pkts"];
    printf("    sent_pkts x active_mtu %u = %.1f MiB >= %.1f MiB moved?\n", mtu, sent * double(mtu) / kMiB,
           bytes / double(kMiB));
    // TCP between local addresses crosses lo; the RDMA transport's does not.
    EXPECT_LT(lo, bytes / 4) << what << ": loopback TCP moved " << lo << " bytes: the data went over TCP";
    EXPECT_GE(sent * mtu, bytes) << what << ": " << dev_ << " sent " << sent << " packets of at most " << mtu
                                 << " bytes, too few for " << bytes << " bytes: the data did not go over RDMA";
  }

 private:
  std::string dev_;
  std::map<std::string, uint64_t> before_;
  uint64_t lo_;
};

class RdmaClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string err = RdmaEnvError();
    ASSERT_EQ(err, "");
  }

  // libcfs (the C++ client in this process) over RDMA.
  std::unique_ptr<client::Client> Libcfs(const LocalCluster& c) {
    auto o = client::ClientOptions::Parse(c.MetaAddr(), "transport=rdma");
    EXPECT_TRUE(o.ok()) << o.status().ToString();
    if (!o.ok()) return nullptr;
    auto cl = client::Client::Connect(*o);
    EXPECT_TRUE(cl.ok()) << "libcfs over RDMA to " << c.MetaAddr() << ": " << cl.status().ToString();
    return cl.ok() ? std::move(*cl) : nullptr;
  }

  // Reads /name through libcfs and compares with FillPattern(seed); "" or the first mismatch.
  static std::string CheckViaLibcfs(client::Client& cl, const std::string& name, uint64_t size, uint64_t seed) {
    auto a = cl.Resolve("/" + name);
    if (!a.ok()) return "resolve: " + a.status().ToString();
    if (a->size() != size) return "size " + std::to_string(a->size()) + " != " + std::to_string(size);
    pb::Attr attr;
    auto f = cl.Open(a->ino(), O_RDONLY, &attr);
    if (!f.ok()) return "open: " + f.status().ToString();
    std::string buf(8 * kMiB, '\0'), want(8 * kMiB, '\0');
    std::string err;
    for (uint64_t off = 0; off < size && err.empty();) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
      auto r = (*f)->Read(buf.data(), n, off);
      if (!r.ok() || *r != n) {
        err = "read at " + std::to_string(off) + ": " + (r.ok() ? std::to_string(*r) + " bytes" : r.status().ToString());
        break;
      }
      FillPattern(want.data(), n, seed, off);
      if (memcmp(buf.data(), want.data(), n) != 0) err = "content differs in the 8 MiB at " + std::to_string(off);
      off += n;
    }
    Status st = cl.Release(*f);
    if (err.empty() && !st.ok()) err = "release: " + st.ToString();
    return err;
  }

  // Writes /name = FillPattern(seed) through libcfs, fsynced.
  static std::string WriteViaLibcfs(client::Client& cl, const std::string& name, uint64_t size, uint64_t seed) {
    pb::Attr attr;
    auto f = cl.Create(1, name, 0644, getuid(), getgid(), true, {}, &attr);
    if (!f.ok()) return "create: " + f.status().ToString();
    std::string buf(4 * kMiB + 3, '\0');  // not unit-aligned: writes straddle units
    std::string err;
    for (uint64_t off = 0; off < size;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
      FillPattern(buf.data(), n, seed, off);
      auto r = (*f)->Write(buf.data(), n, off);
      if (!r.ok() || *r != n) {
        err = "write at " + std::to_string(off) + ": " + (r.ok() ? std::to_string(*r) + " bytes" : r.status().ToString());
        break;
      }
      off += n;
    }
    if (err.empty()) {
      Status st = (*f)->Fsync();
      if (!st.ok()) err = "fsync: " + st.ToString();
    }
    Status st = cl.Release(*f);
    if (err.empty() && !st.ok()) err = "release: " + st.ToString();
    return err;
  }

  // `cfs status --json`: every S-worker registered as serving RDMA.
  static void ExpectWorkersServeRdma(const LocalCluster& c) {
    std::string out;
    ASSERT_EQ(c.Cfs("status --json", &out), 0) << out;
    auto j = nlohmann::json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
    ASSERT_FALSE(j.is_discarded()) << out;
    ASSERT_TRUE(j.contains("data_paths")) << out;
    EXPECT_EQ(j["data_paths"].size(), static_cast<size_t>(c.options().workers)) << out;
    for (const auto& p : j["data_paths"])
      EXPECT_NE(p.value("serves", "").find("rdma"), std::string::npos) << "S-worker does not serve RDMA: " << p.dump();
  }

  static void PrintCounters(const char* what) {
    auto k = rpc::GetRdmaCounters();
    printf("[ rdma path ] libcfs in this process, %s: RDMA READ %.1f MiB, WRITE %.1f MiB, %llu sends, "
           "%llu registrations (%llu cached)\n",
           what, k.read_bytes / double(kMiB), k.write_bytes / double(kMiB),
           static_cast<unsigned long long>(k.sends), static_cast<unsigned long long>(k.registrations),
           static_cast<unsigned long long>(k.cached_registrations));
  }
};

TEST_F(RdmaClusterTest, File256MiBThroughFuseAndLibcfs) {
  LocalCluster c;  // 6 S-workers, 6+0, 1 MiB units
  ASSERT_EQ(c.Up(), "");
  ExpectWorkersServeRdma(c);

  const uint64_t size = 256 * kMiB, seed = 0x5eed;
  const std::string path = c.Path("big.bin");
  {
    PathProbe probe;
    ASSERT_TRUE(WritePatternFileSynced(path, size, seed, 4 * kMiB)) << "write through FUSE: " << strerror(errno);
    probe.ExpectMoved("256 MiB written through FUSE", size);
  }
  {
    ASSERT_EQ(DropCaches(), "");
    PathProbe probe;
    EXPECT_EQ(CheckPatternFile(path, size, seed, 4 * kMiB), "");
    probe.ExpectMoved("256 MiB read through FUSE", size);
  }

  auto cl = Libcfs(c);
  ASSERT_TRUE(cl);
  {
    auto before = rpc::GetRdmaCounters();
    PathProbe probe;
    EXPECT_EQ(CheckViaLibcfs(*cl, "big.bin", size, seed), "");
    probe.ExpectMoved("256 MiB read through libcfs", size);
    auto after = rpc::GetRdmaCounters();
    PrintCounters("after reading 256 MiB");
    EXPECT_GT(after.sends, before.sends) << "libcfs sent no RDMA messages";
  }
  {
    const uint64_t size2 = 64 * kMiB + 12345;
    PathProbe probe;
    ASSERT_EQ(WriteViaLibcfs(*cl, "from-libcfs.bin", size2, seed + 1), "");
    probe.ExpectMoved("64 MiB written through libcfs", size2);
    ASSERT_EQ(DropCaches(), "");
    EXPECT_EQ(CheckPatternFile(c.Path("from-libcfs.bin"), size2, seed + 1, 4 * kMiB), "") << "read back through FUSE";
    PrintCounters("after writing 64 MiB");
  }
  cl.reset();
  EXPECT_EQ(c.Down(), "");
}

TEST_F(RdmaClusterTest, DegradedReadOn4Plus2WithOneWorkerKilled) {
  ClusterOptions o;
  o.workers = 6;
  o.stripe = "4+2";
  LocalCluster c(o);
  ASSERT_EQ(c.Up(), "");
  ExpectWorkersServeRdma(c);
  const uint64_t size = 96 * kMiB + 777, seed = 0xdec0de;
  const std::string path = c.Path("ec.bin");
  ASSERT_TRUE(WritePatternFileSynced(path, size, seed, 4 * kMiB)) << strerror(errno);
  FileLayout l;
  ASSERT_EQ(GetFileLayout(c, path, &l), "");
  ASSERT_EQ(l.k, 4u);
  ASSERT_EQ(l.m, 2u);
  auto workers = TargetWorkers(c);
  ASSERT_EQ(workers.size(), 6u);
  ASSERT_EQ(DropCaches(), "");
  ASSERT_EQ(CheckPatternFile(path, size, seed, 4 * kMiB), "") << "healthy";

  // The worker holding data unit 0 of the first stripe.
  int victim = workers[l.targets[0]];
  ASSERT_TRUE(KillWorker(c, victim)) << "worker " << victim;
  {
    ASSERT_EQ(DropCaches(), "");
    PathProbe probe;
    EXPECT_EQ(CheckPatternFile(path, size, seed, 4 * kMiB), "") << "through FUSE with worker " << victim << " down";
    probe.ExpectMoved("degraded read of 96 MiB through FUSE", size);
  }
  auto cl = Libcfs(c);
  ASSERT_TRUE(cl);
  {
    PathProbe probe;
    EXPECT_EQ(CheckViaLibcfs(*cl, "ec.bin", size, seed), "") << "through libcfs with worker " << victim << " down";
    probe.ExpectMoved("degraded read of 96 MiB through libcfs", size);
    PrintCounters("after the degraded read");
  }
  cl.reset();
  EXPECT_EQ(c.Down(), "");
}

}  // namespace
}  // namespace cfs::test
