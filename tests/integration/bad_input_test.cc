// Bad input of every kind gets a clear error and crashes nothing (issue 2,
// point 9): unknown options, an unreachable M-worker, a missing or full target
// directory, garbage and truncated frames on the daemons' ports, over-long
// names, and stale handles (a file or directory deleted by another client).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cfs.pb.h"
#include "integration/cluster_fixture.h"
#include "integration/test_util.h"
#include "rpc/frame.h"

namespace cfs::test {
namespace {

constexpr uint64_t kMiB = 1ull << 20;

bool Alive(pid_t pid) { return ProcessAlive(pid); }

// ---------------------------------------------------------------------------
// Raw wire access, to play a hostile peer.

int Connect(const std::string& addr) {
  auto colon = addr.rfind(':');
  std::string host = addr.substr(0, colon);
  int port = atoi(addr.substr(colon + 1).c_str());
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, host.c_str(), &a.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& b) {
  size_t off = 0;
  while (off < b.size()) {
    ssize_t n = send(fd, b.data() + off, b.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RecvAll(int fd, size_t n, std::string* out) {
  out->resize(n);
  size_t off = 0;
  while (off < n) {
    ssize_t r = recv(fd, out->data() + off, n - off, 0);
    if (r <= 0) return false;
    off += static_cast<size_t>(r);
  }
  return true;
}

std::string Frame(pb::Method method, const std::string& body, uint64_t bulk_len = 0,
                  uint32_t version = rpc::kWireVersion, int64_t body_len = -1) {
  pb::RpcHeader h;
  h.set_version(version);
  h.set_call_id(7);
  h.set_method(method);
  h.set_body_len(body_len >= 0 ? static_cast<uint32_t>(body_len) : static_cast<uint32_t>(body.size()));
  h.set_bulk_len(bulk_len);
  std::string f;
  rpc::EncodeFramePrefix(h, &f);
  return f + body;
}

// Reads one response frame; false if the peer closed (or timed out) instead.
bool ReadResponse(int fd, pb::RpcHeader* h) {
  std::string pfx, hb, rest;
  if (!RecvAll(fd, rpc::kLengthPrefix, &pfx)) return false;
  auto len = rpc::DecodeHeaderLength(reinterpret_cast<const uint8_t*>(pfx.data()));
  if (!len.ok() || !RecvAll(fd, *len, &hb)) return false;
  auto hdr = rpc::DecodeHeader(hb);
  if (!hdr.ok()) return false;
  *h = *hdr;
  return RecvAll(fd, h->body_len() + h->bulk_len(), &rest);
}

// A well-formed call with an Empty body; "" if it got a successful answer.
std::string Ping(const std::string& addr, pb::Method method) {
  int fd = Connect(addr);
  if (fd < 0) return "cannot connect to " + addr + ": " + strerror(errno);
  pb::RpcHeader h;
  bool ok = SendAll(fd, Frame(method, "")) && ReadResponse(fd, &h);
  close(fd);
  if (!ok) return "no response from " + addr;
  if (!h.is_response() || h.call_id() != 7) return "malformed response from " + addr;
  if (h.err() != 0) return "error " + std::to_string(h.err()) + " from " + addr + ": " + h.err_msg();
  return "";
}

// Sends `bytes` then either reads a response or sees the connection closed.
// Returns "" if the peer behaved: closed, or answered with an error.
std::string Hostile(const std::string& addr, const std::string& bytes, bool half_close = true) {
  int fd = Connect(addr);
  if (fd < 0) return "cannot connect to " + addr;
  SendAll(fd, bytes);  // the peer may close early; that is fine
  if (half_close) shutdown(fd, SHUT_WR);
  pb::RpcHeader h;
  std::string r;
  if (ReadResponse(fd, &h) && h.err() == 0) r = "hostile input was answered with success";
  close(fd);
  return r;
}

std::string Random(std::mt19937_64& rng, size_t n) {
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

void AttackPort(const std::string& addr, pb::Method valid_method) {
  SCOPED_TRACE("attacking " + addr);
  std::mt19937_64 rng(99);
  // Pure garbage of several sizes.
  for (size_t n : {1, 3, 4, 5, 100, 4096, 65536, 1 << 20}) EXPECT_EQ(Hostile(addr, Random(rng, n)), "");
  // Length prefixes out of range, and a zero one.
  EXPECT_EQ(Hostile(addr, std::string("\xff\xff\xff\xff", 4) + Random(rng, 100)), "");
  EXPECT_EQ(Hostile(addr, std::string("\x00\x00\x00\x00", 4) + Random(rng, 100)), "");
  EXPECT_EQ(Hostile(addr, std::string("\x01\x10\x00\x00", 4)), "");  // 4097
  // Truncated: header promised, not sent; body promised, not sent; bulk promised, not sent.
  std::string good = Frame(valid_method, "");
  for (size_t cut = 1; cut < good.size(); cut++) EXPECT_EQ(Hostile(addr, good.substr(0, cut)), "");
  EXPECT_EQ(Hostile(addr, Frame(valid_method, "", 0, rpc::kWireVersion, 1000) + "short"), "");
  pb::UnitIo io;
  io.set_ino(123456);
  io.set_target_id(1);
  io.set_offset(0);
  io.set_length(kMiB);
  EXPECT_EQ(Hostile(addr, Frame(pb::WRITE_UNIT, io.SerializeAsString(), kMiB) + Random(rng, 100)), "");
  // Well framed but wrong: version, unknown method, undecodable body, over-limit lengths.
  EXPECT_EQ(Hostile(addr, Frame(valid_method, "", 0, 2), false), "");
  EXPECT_EQ(Hostile(addr, Frame(static_cast<pb::Method>(999), ""), false), "");
  EXPECT_EQ(Hostile(addr, Frame(pb::LOOKUP, std::string(16, '\xff')), false), "");
  EXPECT_EQ(Hostile(addr, Frame(pb::READ_UNIT, std::string(16, '\xff')), false), "");
  EXPECT_EQ(Hostile(addr, Frame(valid_method, "", rpc::kMaxBulkLen + 1), false), "");
  EXPECT_EQ(Hostile(addr, Frame(valid_method, "", 0, rpc::kWireVersion, rpc::kMaxBodyLen + 1)), "");
  // A read of 1 TiB must be refused, not attempted.
  pb::UnitIo huge = io;
  huge.set_length(1ull << 40);
  EXPECT_EQ(Hostile(addr, Frame(pb::READ_UNIT, huge.SerializeAsString()), false), "");
  // Many idle connections that never send a byte, held while the daemon is pinged.
  std::vector<int> idle;
  for (int i = 0; i < 64; i++) idle.push_back(Connect(addr));
  EXPECT_EQ(Ping(addr, valid_method), "") << "with 64 idle connections open";
  for (int fd : idle)
    if (fd >= 0) close(fd);
}

// ---------------------------------------------------------------------------

class BadInputTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(c_.Up(), ""); }
  LocalCluster c_;
};

// The exit code of every CFS program for a bad command line or option.
constexpr int kExitUsage = 2;

// Runs cmd; it must fail as a usage error (exit 2: not another failure, a hang
// or a signal), with a message that names `bad`.
void ExpectRejected(const std::string& cmd, const std::string& bad) {
  std::string out;
  int rc = RunWithTimeout(30, cmd, &out);
  EXPECT_EQ(rc, kExitUsage) << cmd << " should exit " << kExitUsage << " (bad command line):\n" << out;
  EXPECT_NE(out.find(bad), std::string::npos) << cmd << ": the message does not name " << bad
                                              << ":\n" << out;
}

TEST(BadOptionsTest, UnknownOptionsExitNonZeroWithClearMessage) {
  const std::string bad = "--no-such-option-xyz";
  const std::string port = std::to_string(UnusedPort());
  // Everything else on the command line is right: the message must name the bad option.
  ExpectRejected(Bin("cfs-meta") + " --db /tmp/cfs-no-such-db-xyz --listen 127.0.0.1:" + port + " " + bad, bad);
  ExpectRejected(Bin("cfs-storage") + " --meta 127.0.0.1:" + port + " --listen 127.0.0.1:" + port +
                     " --target /tmp " + bad,
                 bad);
  ExpectRejected(Bin("cfs-fuse") + " " + bad + " 127.0.0.1:" + port + " /tmp", bad);
  ExpectRejected(Bin("cfs") + " status --cluster 127.0.0.1:" + port + " " + bad, bad);
  ExpectRejected(Bin("cfs") + " local up --dir /tmp/cfs-no-such-dir-xyz --mount /tmp/cfs-no-such-mnt-xyz " + bad,
                 bad);
  ExpectRejected(Bin("cfs") + " no-such-command-xyz", "no-such-command-xyz");
  // Required options (or the subcommand) missing as well: the unknown option is
  // still what the message names, not the missing one.
  ExpectRejected(Bin("cfs-meta") + " " + bad, bad);
  ExpectRejected(Bin("cfs-storage") + " " + bad, bad);
  ExpectRejected(Bin("cfs-storage") + " --meta 127.0.0.1:" + port + " " + bad, bad);
  ExpectRejected(Bin("cfs") + " " + bad, bad);
  ExpectRejected(Bin("cfs") + " local " + bad, bad);
  ExpectRejected(Bin("cfs") + " local up " + bad, bad);
  ExpectRejected(Bin("cfs") + " local start-worker --dir /tmp/cfs-no-such-dir-xyz " + bad, bad);
  ExpectRejected(Bin("cfs") + " setstripe " + bad, bad);
  // A bad FUSE option with an M-worker nobody answers at: the option, not the connection.
  ExpectRejected(Bin("cfs-fuse") + " -o no_such_mount_option_xyz 127.0.0.1:" + port + " /tmp -f",
                 "no_such_mount_option_xyz");
  // Missing required options alone are usage errors too, and say what is missing.
  ExpectRejected(Bin("cfs-meta") + " --listen 127.0.0.1:" + port, "--db");
  ExpectRejected(Bin("cfs-storage") + " --target /tmp", "--meta");
  ExpectRejected(Bin("cfs") + " local up", "--dir");
  struct stat st;
  EXPECT_NE(stat("/tmp/cfs-no-such-db-xyz", &st), 0) << "cfs-meta created its db despite a bad option";
  EXPECT_NE(stat("/tmp/cfs-no-such-dir-xyz", &st), 0) << "cfs local up acted despite a bad option";
}

TEST(BadOptionsTest, UnreachableMetaWorker) {
  const std::string addr = "127.0.0.1:" + std::to_string(UnusedPort());
  std::string out;
  int rc = RunWithTimeout(90, Bin("cfs") + " status --cluster " + addr, &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_LT(rc, 124) << "cfs status against a dead M-worker hung or crashed:\n" << out;
  EXPECT_NE(out.find(addr), std::string::npos) << "the message should name " << addr << ":\n" << out;

  char tmpl[] = "/tmp/cfs-unreach-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string mnt = tmpl;
  rc = RunWithTimeout(90, Bin("cfs-fuse") + " " + addr + " " + mnt + " -f", &out);
  cfs::test::Run("fusermount3 -u " + mnt + " ; rmdir " + mnt);
  EXPECT_NE(rc, 0) << out;
  EXPECT_LT(rc, 124) << "cfs-fuse against a dead M-worker hung or crashed:\n" << out;
  EXPECT_NE(out.find(addr), std::string::npos) << "the message should name " << addr << ":\n" << out;
}

TEST_F(BadInputTest, UnknownFuseMountOption) {
  const std::string mnt = c_.dir() + "/mnt-badopt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  ExpectRejected(Bin("cfs-fuse") + " -o no_such_mount_option " + c_.MetaAddr() + " " + mnt + " -f",
                 "no_such_mount_option");
  bool mounted = cfs::test::Run("mountpoint -q " + mnt) == 0;
  EXPECT_FALSE(mounted) << "a mount was left behind";
  if (mounted) cfs::test::Run("fusermount3 -u " + mnt);
}

TEST_F(BadInputTest, MissingTargetDirectory) {
  const std::string target = c_.dir() + "/does-not-exist/t0";
  std::string out;
  int rc = RunWithTimeout(60, Bin("cfs-storage") + " --meta " + c_.MetaAddr() + " --listen 127.0.0.1:" +
                                  std::to_string(UnusedPort()) + " --metrics 127.0.0.1:" +
                                  std::to_string(UnusedPort()) + " --target " + target,
                          &out);
  EXPECT_NE(rc, 0) << out;
  EXPECT_LT(rc, 124) << "cfs-storage with a missing target hung or crashed:\n" << out;
  EXPECT_NE(out.find(target), std::string::npos) << "the message should name the target:\n" << out;
  struct stat st;
  EXPECT_NE(stat(target.c_str(), &st), 0) << "cfs-storage must not invent a missing target";
}

TEST_F(BadInputTest, GarbageAndTruncatedFramesOnDaemonPorts) {
  // Data that must survive the attack.
  ASSERT_TRUE(WritePatternFile(c_.Path("before.bin"), 13 * kMiB + 5, 31));
  auto cfg = nlohmann::json::parse(ReadFileStr(c_.dir() + "/cluster.json"), nullptr, false);
  ASSERT_TRUE(cfg.is_object()) << "cannot read " << c_.dir() << "/cluster.json";
  ASSERT_TRUE(cfg.contains("worker_ports")) << cfg.dump();
  const std::string meta = c_.MetaAddr();
  ASSERT_EQ(Ping(meta, pb::GET_STATUS), "");
  std::vector<std::string> workers;
  for (const auto& p : cfg["worker_ports"]) workers.push_back("127.0.0.1:" + std::to_string(p.get<int>()));
  ASSERT_EQ(workers.size(), 6u);
  ASSERT_EQ(Ping(workers[0], pb::TARGET_STATS), "");

  AttackPort(meta, pb::GET_STATUS);
  AttackPort(workers[0], pb::TARGET_STATS);
  AttackPort(workers[3], pb::TARGET_STATS);

  EXPECT_TRUE(Alive(c_.MetaPid())) << "cfs-meta died";
  for (int i = 0; i < 6; i++) EXPECT_TRUE(Alive(c_.WorkerPid(i))) << "cfs-storage " << i << " died";
  EXPECT_EQ(Ping(meta, pb::GET_STATUS), "");
  for (const auto& w : workers) EXPECT_EQ(Ping(w, pb::TARGET_STATS), "");
  // The file system still serves, old data and new.
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(c_.Path("before.bin"), 13 * kMiB + 5, 31), "");
  ASSERT_TRUE(WritePatternFile(c_.Path("after.bin"), 7 * kMiB + 1, 32));
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(c_.Path("after.bin"), 7 * kMiB + 1, 32), "");
}

TEST_F(BadInputTest, OverLongNames) {
  const std::string n255(255, 'a'), n256(256, 'b'), n1000(1000, 'c');
  ASSERT_TRUE(WriteFileStr(c_.Path(n255), "ok")) << "a 255-byte name must work: " << strerror(errno);
  EXPECT_EQ(ReadFileStr(c_.Path(n255)), "ok");
  auto names = ListDir(c_.mnt());
  EXPECT_NE(std::find(names.begin(), names.end(), n255), names.end());

  for (const auto& n : {n256, n1000}) {
    SCOPED_TRACE("name of " + std::to_string(n.size()) + " bytes");
    errno = 0;
    EXPECT_LT(open(c_.Path(n).c_str(), O_CREAT | O_WRONLY, 0644), 0);
    EXPECT_EQ(errno, ENAMETOOLONG) << strerror(errno);
    EXPECT_NE(mkdir(c_.Path(n).c_str(), 0755), 0);
    EXPECT_EQ(errno, ENAMETOOLONG) << strerror(errno);
    EXPECT_NE(rename(c_.Path(n255).c_str(), c_.Path(n).c_str()), 0);
    EXPECT_EQ(errno, ENAMETOOLONG) << strerror(errno);
    EXPECT_NE(symlink("target", c_.Path(n).c_str()), 0);
    EXPECT_EQ(errno, ENAMETOOLONG) << strerror(errno);
    EXPECT_NE(link(c_.Path(n255).c_str(), c_.Path(n).c_str()), 0);
    EXPECT_EQ(errno, ENAMETOOLONG) << strerror(errno);
    struct stat st;
    EXPECT_NE(stat(c_.Path(n).c_str(), &st), 0);
    EXPECT_TRUE(errno == ENAMETOOLONG || errno == ENOENT) << strerror(errno);
  }
  // A path longer than PATH_MAX.
  std::string deep = c_.mnt();
  while (deep.size() < 5000) deep += "/" + std::string(200, 'd');
  EXPECT_LT(open(deep.c_str(), O_CREAT | O_WRONLY, 0644), 0);
  EXPECT_EQ(errno, ENAMETOOLONG);
  // Nothing half-made: no entry with an over-long name, the 255-byte file intact.
  for (const auto& n : ListDir(c_.mnt())) EXPECT_LE(n.size(), 255u);
  EXPECT_EQ(ReadFileStr(c_.Path(n255)), "ok");
}

// A second client: another cfs-fuse mount of the same cluster.
class SecondMount {
 public:
  explicit SecondMount(const LocalCluster& c) : mnt_(c.dir() + "/mnt2") {
    mkdir(mnt_.c_str(), 0755);
    log_ = c.dir() + "/log/fuse2.log";
    Run("setsid " + Bin("cfs-fuse") + " " + c.MetaAddr() + " " + mnt_ + " -f > " + log_ + " 2>&1 &");
    for (int i = 0; i < 200 && !Mounted(); i++) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~SecondMount() {
    cfs::test::Run("fusermount3 -u " + mnt_ + " || umount -l " + mnt_);
  }
  bool Mounted() const { return Run("mountpoint -q " + mnt_) == 0; }
  std::string Path(const std::string& rel) const { return mnt_ + "/" + rel; }
  std::string Log() const { return ReadFileStr(log_); }

 private:
  std::string mnt_, log_;
};

TEST_F(BadInputTest, StaleHandles) {
  SecondMount b(c_);
  ASSERT_TRUE(b.Mounted()) << "second mount did not come up:\n" << b.Log();
  pid_t fuse_a = atoi(ReadFileStr(c_.dir() + "/run/fuse.pid").c_str());

  // (1) A knows the file (cached lookup), B deletes it, A opens it by path.
  ASSERT_TRUE(WriteFileStr(c_.Path("f1"), "old content"));
  struct stat st;
  ASSERT_EQ(stat(c_.Path("f1").c_str(), &st), 0);
  ASSERT_EQ(unlink(b.Path("f1").c_str()), 0) << strerror(errno);
  errno = 0;
  int fd = open(c_.Path("f1").c_str(), O_RDONLY);
  if (fd >= 0) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    ADD_FAILURE() << "opened a file deleted by another client; read " << n << " bytes: "
                  << (n > 0 ? std::string(buf, n) : std::string(strerror(errno)));
    close(fd);
  } else {
    EXPECT_TRUE(errno == ENOENT || errno == ESTALE) << strerror(errno);
  }

  // (2) B replaces a file A has cached: A must see the new file or an error, never the old bytes.
  ASSERT_TRUE(WriteFileStr(c_.Path("f2"), "old old old"));
  ASSERT_EQ(stat(c_.Path("f2").c_str(), &st), 0);
  ASSERT_EQ(unlink(b.Path("f2").c_str()), 0);
  ASSERT_TRUE(WriteFileStr(b.Path("f2"), "new"));
  bool ok = false;
  std::string s = ReadFileStr(c_.Path("f2"), &ok);
  if (ok) {
    EXPECT_EQ(s, "new") << "client A read a deleted file's data";
  }

  // (3) A holds the file open, B deletes it: A's reads give the data or an error, never garbage.
  ASSERT_TRUE(WritePatternFile(c_.Path("f3"), 3 * kMiB, 77));
  fd = open(c_.Path("f3").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(b.Path("f3").c_str()), 0);
  std::string got(kMiB, '\0'), want(kMiB, '\0');
  FillPattern(want.data(), kMiB, 77, kMiB);
  ssize_t n = pread(fd, got.data(), kMiB, kMiB);
  if (n >= 0) {
    EXPECT_EQ(n, static_cast<ssize_t>(kMiB));
    EXPECT_TRUE(got.compare(0, n, want, 0, n) == 0) << "wrong data from a file deleted by another client";
  } else {
    EXPECT_TRUE(errno == ESTALE || errno == ENOENT || errno == EIO) << strerror(errno);
  }
  // Success or a clean error; these must not take the mount down.
  if (pwrite(fd, "x", 1, 0) < 0) printf("pwrite on a deleted file: %s\n", strerror(errno));
  if (fsync(fd) != 0) printf("fsync on a deleted file: %s\n", strerror(errno));
  if (fstat(fd, &st) != 0) printf("fstat on a deleted file: %s\n", strerror(errno));
  close(fd);

  // (4) A holds a directory open, B removes it: creating in it fails cleanly.
  ASSERT_EQ(mkdir(c_.Path("d").c_str(), 0755), 0);
  int dfd = open(c_.Path("d").c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(dfd, 0);
  ASSERT_EQ(rmdir(b.Path("d").c_str()), 0) << strerror(errno);
  errno = 0;
  int cfd = openat(dfd, "child", O_CREAT | O_WRONLY, 0644);
  EXPECT_LT(cfd, 0) << "created a file in a directory another client removed";
  if (cfd < 0) {
    EXPECT_TRUE(errno == ENOENT || errno == ESTALE) << strerror(errno);
  } else {
    close(cfd);
  }
  EXPECT_NE(mkdirat(dfd, "sub", 0755), 0);
  close(dfd);

  // Both clients are still alive and serving.
  EXPECT_TRUE(Alive(fuse_a)) << "cfs-fuse of client A died";
  EXPECT_TRUE(WriteFileStr(c_.Path("alive"), "yes"));
  EXPECT_EQ(ReadFileStr(b.Path("alive")), "yes");
}

// One S-worker's target is a 16 MiB tmpfs: a big write fills it. The writer
// gets ENOSPC (not EIO, not a hang), the data written before stays readable,
// and once the big file is deleted the space comes back.
TEST(FullTargetTest, SmallTmpfsTargetGivesEnospc) {
  LocalCluster c;
  const std::string t0 = c.dir() + "/storage-0/t0";
  ASSERT_EQ(cfs::test::Run("mkdir -p '" + t0 + "'"), 0);
  ASSERT_EQ(mount("cfs-test-tmpfs", t0.c_str(), "tmpfs", 0, "size=16m"), 0)
      << "mounting a tmpfs target needs root: " << strerror(errno);
  struct Unmounter {
    LocalCluster& c;
    std::string t0;
    ~Unmounter() {
      c.Down();
      umount2(t0.c_str(), MNT_DETACH);
    }
  } unmounter{c, t0};
  ASSERT_EQ(c.Up(), "");

  ASSERT_TRUE(WritePatternFile(c.Path("keep.bin"), 6 * kMiB + 100, 5));
  ASSERT_TRUE(WriteFileStr(c.Path("small.txt"), "small"));

  // 6+0 over 6 workers: a 300 MiB file puts 50 MiB on the 16 MiB target.
  int err = 0;
  std::string where;
  int fd = open(c.Path("fill.bin").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    err = errno;
    where = "open";
  } else {
    std::string buf(kMiB, '\0');
    for (uint64_t off = 0; off < 300 * kMiB && !err; off += kMiB) {
      FillPattern(buf.data(), kMiB, 6, off);
      if (pwrite(fd, buf.data(), kMiB, static_cast<off_t>(off)) != static_cast<ssize_t>(kMiB)) {
        err = errno;
        where = "write at " + std::to_string(off);
      }
    }
    if (!err && fsync(fd) != 0) {
      err = errno;
      where = "fsync";
    }
    if (close(fd) != 0 && !err) {
      err = errno;
      where = "close";
    }
  }
  EXPECT_EQ(err, ENOSPC) << "the writer should see ENOSPC; got " << (err ? strerror(err) : "success")
                         << " at " << where;
  printf("writer got %s at %s\n", err ? strerror(err) : "success", where.c_str());

  // Everything else is intact and the cluster still serves.
  ASSERT_EQ(DropCaches(), "");
  EXPECT_EQ(CheckPatternFile(c.Path("keep.bin"), 6 * kMiB + 100, 5), "");
  EXPECT_EQ(ReadFileStr(c.Path("small.txt")), "small");
  for (int i = 0; i < 6; i++) EXPECT_TRUE(Alive(c.WorkerPid(i))) << "cfs-storage " << i << " died";
  EXPECT_TRUE(Alive(c.MetaPid()));
  std::string out;
  EXPECT_EQ(c.Cfs("df", &out), 0) << out;

  // Deleting the big file gives the space back (object deletion is asynchronous).
  ASSERT_EQ(unlink(c.Path("fill.bin").c_str()), 0) << strerror(errno);
  bool wrote = false;
  for (int i = 0; i < 60 && !wrote; i++) {
    wrote = WritePatternFile(c.Path("again.bin"), 12 * kMiB, 8);
    if (!wrote) std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  EXPECT_TRUE(wrote) << "no space came back within 60 s of deleting the file that filled the target";
  if (wrote) {
    EXPECT_EQ(CheckPatternFile(c.Path("again.bin"), 12 * kMiB, 8), "");
  }
}

}  // namespace
}  // namespace cfs::test
