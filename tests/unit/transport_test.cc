// Transport conformance: the same cases through the rpc interface (Server,
// Channel, CallSpec) for the transport CFS_TEST_TRANSPORT names (default tcp).
// ctest runs it twice: as label `unit` over TCP on 127.0.0.1, and as label
// `rdma` with CFS_TEST_TRANSPORT=rdma inside the Soft-RoCE guest, listening
// on CFS_RDMA_ADDR (rdma_cm cannot use 127.x there). Where RDMA is asked for
// and not usable, every case FAILS saying so: it never skips.
//
// Cases: request bulk (client -> server; the RDMA server READs it) and
// response bulk (server -> client; RDMA WRITE) from 1 byte to 64 MiB, checked
// by checksum and byte compare; gathered bulk of many segments both ways;
// 8 threads x 64 calls in flight on one channel; bodies near kRdmaMaxMessage;
// memory announced with RegisterMemory and plain (unaligned) memory; errors
// and timeouts; a server process killed by SIGKILL mid-transfer (the call
// fails promptly, the channel turns unhealthy, a pool reconnects to a new
// server on the same port); on RDMA, GetRdmaCounters grows by the bytes moved
// and no one-use registration outlives its call (one_use_live); response bulk
// built in ServerCall::ReplyBuffer is written without a staging copy.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "rpc/channel_pool.h"
#include "rpc/frame.h"
#include "rpc/rdma_transport.h"
#include "rpc/transport.h"

namespace cfs::rpc {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr size_t kKiB = 1024, kMiB = 1024 * 1024;
// Bounds on waits that only catch hangs: RDMA under emulation has latency
// outliers of 60 ms and moves 10-60 MB/s, so nothing here measures speed.
constexpr auto kCallTimeout = std::chrono::milliseconds(180000);
constexpr auto kConnectTimeout = std::chrono::milliseconds(20000);

const char* kGuestHint =
    "run it where RDMA works: scripts/rdma-guest/run.sh -- ctest -L rdma "
    "(the Soft-RoCE guest sets CFS_RDMA_ADDR and CFS_RDMA_DEVICE)";

std::string EnvOr(const char* name, const std::string& def) {
  const char* v = getenv(name);
  return v && *v ? v : def;
}

std::string TransportName() { return EnvOr("CFS_TEST_TRANSPORT", "tcp"); }

// The address servers listen on; "" with *why set when it cannot be chosen.
std::string ListenHost(const std::string& transport, std::string* why) {
  if (transport == "tcp") return EnvOr("CFS_TEST_BIND", "127.0.0.1");
  std::string a = EnvOr("CFS_RDMA_ADDR", EnvOr("CFS_TEST_BIND", ""));
  if (a.empty())
    *why = "CFS_TEST_TRANSPORT=" + transport +
           " needs CFS_RDMA_ADDR (an address on the RDMA device; rdma_cm cannot use 127.x): " + kGuestHint;
  return a;
}

Result<std::shared_ptr<Transport>> MakeTestTransport(const std::string& name) {
  auto t = MakeTransport(name, EnvOr("CFS_RDMA_DEVICE", ""));
  if (!t.ok() && name != "tcp")
    return Status(t.status().err(), "transport '" + name + "' is not usable here: " +
                                        t.status().ToString() + "; " + kGuestHint);
  return t;
}

// Deterministic bytes: splitmix64 of (seed, word index), fast enough under TCG.
void Pattern(char* p, size_t n, uint64_t seed) {
  size_t i = 0;
  for (uint64_t w = 0; i < n; w++) {
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + w + 1;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    size_t k = std::min<size_t>(8, n - i);
    memcpy(p + i, &z, k);
    i += k;
  }
}

uint64_t Sum(const void* p, size_t n) { return n ? BlockChecksum(p, n) : 0; }

// First differing byte, for messages.
std::string FirstDiff(const char* got, const char* want, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (got[i] != want[i]) return "content differs at byte " + std::to_string(i) + " of " + std::to_string(n);
  return "";
}

// Page-aligned anonymous memory (what libcfs registered buffers look like).
class Region {
 public:
  explicit Region(size_t len) : len_(len) {
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    p_ = p == MAP_FAILED ? nullptr : static_cast<char*>(p);
  }
  ~Region() {
    if (p_) munmap(p_, len_);
  }
  Region(const Region&) = delete;
  Region& operator=(const Region&) = delete;
  char* data() const { return p_; }
  size_t size() const { return len_; }

 private:
  char* p_ = nullptr;
  size_t len_;
};

// ---- the test server (in this process, or in a child for the kill cases) ----
//   READ_UNIT   UnitIo{ino=seed, length, target_id=pieces} -> bulk Pattern(seed, length)
//               in `pieces` gathered segments
//   WRITE_UNIT  UnitIo + bulk -> UnitIo{length=bulk size, offset=checksum, target_id=1 if aligned}
//   GETXATTR    any body + bulk -> the same bulk back
//   SETXATTR    XattrRequest{value} + bulk -> XattrResponse{value} + the same bulk back;
//               with flags=N: XattrResponse{value = Pattern(ino, N)} (a big response body)
//   GETATTR     InoRequest{ino=ms} -> sleeps ms, AttrResponse{attr.ino=ms}
//   LOOKUP      -> ENOENT "no entry <name>"
struct ChildHooks {
  int notify_fd = -1;  // the child writes "reply\n" / "bulk\n" here
};

void Notify(const ChildHooks* h, const char* what) {
  if (h && h->notify_fd >= 0) (void)!write(h->notify_fd, what, strlen(what));
}

void RegisterHandlers(Server& s, const ChildHooks* hooks) {
  s.Register(pb::READ_UNIT, [hooks](ServerCall& c) {
    pb::UnitIo req;
    if (!DecodeBody(c.body(), &req).ok()) return c.Reply(Status::Invalid("bad UnitIo"), nullptr);
    if (req.offset() == 1) {  // built in the transport's reply buffer
      char* out = c.ReplyBuffer(req.length());
      if (!out) return c.Reply(Status(ENOMEM, "no reply buffer"), nullptr);
      Pattern(out, req.length(), req.ino());
      pb::Empty resp;
      return c.Reply(Status::OK(), &resp, {ConstBuf{out, req.length()}});
    }
    auto buf = std::make_shared<std::string>(req.length(), '\0');
    Pattern(buf->data(), buf->size(), req.ino());
    size_t pieces = std::max<uint32_t>(1, req.target_id());
    std::vector<ConstBuf> segs;
    size_t len = buf->size();
    for (size_t i = 0, off = 0; i < pieces; i++) {
      size_t end = (i + 1 == pieces) ? len : len * (i + 1) / pieces;
      if (end > off) segs.push_back({buf->data() + off, end - off});
      off = std::max(off, end);
    }
    pb::Empty resp;
    Notify(hooks, "reply\n");
    c.Reply(Status::OK(), &resp, segs);
  });
  s.Register(pb::WRITE_UNIT, [hooks](ServerCall& c) {
    pb::UnitIo resp;
    resp.set_length(c.bulk().size());
    resp.set_offset(Sum(c.bulk().data(), c.bulk().size()));
    resp.set_target_id(reinterpret_cast<uintptr_t>(c.bulk().data()) % kBulkAlignment == 0 ? 1 : 0);
    if (hooks) {
      // The kill cases: the request bulk has fully arrived; never answer.
      Notify(hooks, "bulk\n");
      std::this_thread::sleep_for(600s);
    }
    c.Reply(Status::OK(), &resp);
  });
  s.Register(pb::GETXATTR, [](ServerCall& c) {
    pb::XattrResponse resp;
    c.Reply(Status::OK(), &resp, {{c.bulk().data(), c.bulk().size()}});
  });
  s.Register(pb::SETXATTR, [](ServerCall& c) {
    pb::XattrRequest req;
    if (!DecodeBody(c.body(), &req).ok()) return c.Reply(Status::Invalid("bad XattrRequest"), nullptr);
    pb::XattrResponse resp;
    if (req.flags() != 0) {  // a response body of `flags` pattern bytes (seed ino)
      std::string v(req.flags(), '\0');
      Pattern(v.data(), v.size(), req.ino());
      resp.set_value(v);
    } else {
      resp.set_value(req.value());
    }
    c.Reply(Status::OK(), &resp, {{c.bulk().data(), c.bulk().size()}});
  });
  s.Register(pb::GETATTR, Typed<pb::InoRequest, pb::AttrResponse>(
                              [](const pb::InoRequest& r, pb::AttrResponse* a) {
                                std::this_thread::sleep_for(std::chrono::milliseconds(r.ino()));
                                a->mutable_attr()->set_ino(r.ino());
                                return Status::OK();
                              }));
  s.Register(pb::LOOKUP, Typed<pb::LookupRequest, pb::AttrResponse>(
                             [](const pb::LookupRequest& r, pb::AttrResponse*) {
                               return Status::NotFound("no entry " + r.name());
                             }));
}

// RdmaCounters once they have grown from `base` by the given amounts, or
// after 5 s: the server counts its READ/WRITE/SEND when it polls their
// completions, which can be just after the client already has the response.
RdmaCounters CountersAtLeast(const RdmaCounters& base, uint64_t read, uint64_t write, uint64_t sends) {
  auto until = Clock::now() + 5s;
  for (;;) {
    RdmaCounters c = GetRdmaCounters();
    if ((c.read_bytes - base.read_bytes >= read && c.write_bytes - base.write_bytes >= write &&
         c.sends - base.sends >= sends) ||
        Clock::now() > until)
      return c;
    std::this_thread::sleep_for(10ms);
  }
}

// ---- client-side checks; each returns OK or what went wrong ----

// Reads len pattern bytes into buf (which has room for len + 64 guard bytes).
// from_reply_buffer: the server builds it in ServerCall::ReplyBuffer.
Status ReadPatternInto(Channel& ch, uint64_t seed, size_t len, char* buf, uint32_t pieces = 1,
                       bool from_reply_buffer = false) {
  memset(buf, 'x', len + 64);
  pb::UnitIo req;
  req.set_ino(seed);
  req.set_length(len);
  req.set_target_id(pieces);
  req.set_offset(from_reply_buffer ? 1 : 0);
  CallSpec s;
  s.method = pb::READ_UNIT;
  s.request = &req;
  s.bulk_in = buf;
  s.bulk_in_cap = len;
  s.timeout = kCallTimeout;
  auto call = ch.Start(s);
  CFS_RETURN_IF_ERROR(call->Wait());
  if (call->bulk_in_len() != len)
    return Status::IOError("response bulk " + std::to_string(call->bulk_in_len()) + " bytes, want " +
                           std::to_string(len));
  std::string want(len, '\0');
  Pattern(want.data(), len, seed);
  if (memcmp(buf, want.data(), len) != 0) return Status::IOError("response bulk: " + FirstDiff(buf, want.data(), len));
  for (size_t i = 0; i < 64; i++)
    if (buf[len + i] != 'x') return Status::IOError("response bulk written past bulk_in_cap");
  return Status::OK();
}

Status ReadPattern(Channel& ch, uint64_t seed, size_t len, uint32_t pieces = 1) {
  std::string buf(len + 64, '\0');
  return ReadPatternInto(ch, seed, len, buf.data(), pieces);
}

// Sends the segments as request bulk; the server answers its length and checksum.
Status WriteSegments(Channel& ch, const std::vector<ConstBuf>& segs) {
  std::string all;
  for (auto& s : segs) all.append(static_cast<const char*>(s.data), s.len);
  pb::UnitIo req, resp;
  req.set_length(all.size());
  CallSpec s;
  s.method = pb::WRITE_UNIT;
  s.request = &req;
  s.response = &resp;
  s.bulk_out = segs;
  s.timeout = kCallTimeout;
  CFS_RETURN_IF_ERROR(ch.Call(s));
  if (resp.length() != all.size())
    return Status::IOError("server received " + std::to_string(resp.length()) + " bytes of " +
                           std::to_string(all.size()));
  if (resp.offset() != Sum(all.data(), all.size())) return Status::IOError("server received different bytes");
  if (!all.empty() && resp.target_id() != 1) return Status::IOError("request bulk not kBulkAlignment-aligned at the server");
  return Status::OK();
}

// Sends data (len bytes) in `pieces` adjacent segments.
Status WriteFrom(Channel& ch, const char* data, size_t len, size_t pieces = 1) {
  std::vector<ConstBuf> segs;
  for (size_t i = 0, off = 0; i < pieces; i++) {
    size_t end = (i + 1 == pieces) ? len : len * (i + 1) / pieces;
    if (end > off) segs.push_back({data + off, end - off});
    off = std::max(off, end);
  }
  return WriteSegments(ch, segs);
}

// Request bulk out of segs, echoed back by the server into in (room for total + 64).
Status EchoSegments(Channel& ch, const std::vector<ConstBuf>& segs, char* in) {
  std::string all;
  for (auto& s : segs) all.append(static_cast<const char*>(s.data), s.len);
  memset(in, 'x', all.size() + 64);
  pb::XattrRequest req;
  pb::XattrResponse resp;
  CallSpec s;
  s.method = pb::GETXATTR;
  s.request = &req;
  s.response = &resp;
  s.bulk_out = segs;
  s.bulk_in = in;
  s.bulk_in_cap = all.size();
  s.timeout = kCallTimeout;
  auto call = ch.Start(s);
  CFS_RETURN_IF_ERROR(call->Wait());
  if (call->bulk_in_len() != all.size())
    return Status::IOError("echo came back with " + std::to_string(call->bulk_in_len()) + " bytes of " +
                           std::to_string(all.size()));
  if (memcmp(in, all.data(), all.size()) != 0) return Status::IOError("echo: " + FirstDiff(in, all.data(), all.size()));
  for (size_t i = 0; i < 64; i++)
    if (in[all.size() + i] != 'x') return Status::IOError("echo written past bulk_in_cap");
  return Status::OK();
}

Status Sleep(Channel& ch, int ms, std::chrono::milliseconds timeout) {
  pb::InoRequest req;
  req.set_ino(ms);
  pb::AttrResponse resp;
  CallSpec s;
  s.method = pb::GETATTR;
  s.request = &req;
  s.response = &resp;
  s.timeout = timeout;
  Status st = ch.Call(s);
  if (st.ok() && resp.attr().ino() != static_cast<uint64_t>(ms)) return Status::IOError("wrong reply");
  return st;
}

// Body of body_len bytes echoed in the response body, with bulk_len bytes of
// bulk each way.
Status EchoBody(Channel& ch, size_t body_len, size_t bulk_len, uint64_t seed) {
  pb::XattrRequest req;
  std::string value(body_len, '\0');
  Pattern(value.data(), value.size(), seed);
  req.set_value(value);
  std::string out(bulk_len, '\0'), in(bulk_len + 64, 'x');
  Pattern(out.data(), out.size(), seed + 1);
  pb::XattrResponse resp;
  CallSpec s;
  s.method = pb::SETXATTR;
  s.request = &req;
  s.response = &resp;
  if (bulk_len) s.bulk_out = {{out.data(), out.size()}};
  s.bulk_in = in.data();
  s.bulk_in_cap = bulk_len;
  s.timeout = kCallTimeout;
  auto call = ch.Start(s);
  CFS_RETURN_IF_ERROR(call->Wait());
  if (resp.value() != value) return Status::IOError("response body differs from the request body");
  if (call->bulk_in_len() != bulk_len || in.compare(0, bulk_len, out) != 0) return Status::IOError("bulk echo differs");
  if (in.substr(bulk_len) != std::string(64, 'x')) return Status::IOError("bulk written past bulk_in_cap");
  return Status::OK();
}

// A small request whose response body is body_len pattern bytes.
Status BigResponseBody(Channel& ch, size_t body_len, uint64_t seed) {
  pb::XattrRequest req;
  req.set_ino(seed);
  req.set_flags(static_cast<uint32_t>(body_len));
  pb::XattrResponse resp;
  CallSpec s;
  s.method = pb::SETXATTR;
  s.request = &req;
  s.response = &resp;
  s.timeout = kCallTimeout;
  CFS_RETURN_IF_ERROR(ch.Call(s));
  std::string want(body_len, '\0');
  Pattern(want.data(), want.size(), seed);
  if (resp.value() != want) return Status::IOError("response body differs");
  return Status::OK();
}

// ---- a server in a child process (the kill cases) ----

struct Child {
  pid_t pid = -1;
  int fd = -1;  // the child's stdout: "port N\n", then "reply\n" / "bulk\n"
  uint16_t port = 0;
  std::string seen;  // everything read from fd so far
};

// Reads from the child until `what` appeared (true) or the bound passed.
bool WaitFor(Child& c, const std::string& what, std::chrono::milliseconds bound) {
  auto until = Clock::now() + bound;
  while (c.seen.find(what) == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()).count();
    if (left <= 0) return false;
    pollfd p{c.fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
    char buf[256];
    ssize_t n = read(c.fd, buf, sizeof buf);
    if (n <= 0) return c.seen.find(what) != std::string::npos;
    c.seen.append(buf, n);
  }
  return true;
}

// Starts `/proc/self/exe --serve TRANSPORT HOST PORT` and waits for its port.
Status SpawnServer(const std::string& transport, const std::string& host, uint16_t port, Child* c) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) return Status::IOError("pipe");
  std::string port_s = std::to_string(port);
  const char* argv[] = {"transport_test", "--serve", transport.c_str(), host.c_str(), port_s.c_str(), nullptr};
  pid_t pid = fork();
  if (pid < 0) return Status::IOError("fork");
  if (pid == 0) {
    dup2(p[1], 1);
    execv("/proc/self/exe", const_cast<char* const*>(argv));
    _exit(127);
  }
  close(p[1]);
  c->pid = pid;
  c->fd = p[0];
  if (!WaitFor(*c, "\n", 60s) || c->seen.rfind("port ", 0) != 0)
    return Status::IOError("child server did not start: '" + c->seen + "'");
  c->port = static_cast<uint16_t>(atoi(c->seen.c_str() + 5));
  return Status::OK();
}

void KillChild(Child& c) {
  if (c.pid > 0) {
    kill(c.pid, SIGKILL);
    waitpid(c.pid, nullptr, 0);
    c.pid = -1;
  }
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
}

// The child's main: serve until killed (or until the parent dies).
int ServeChild(int argc, char** argv) {
  if (argc < 5) return 2;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  auto t = MakeTestTransport(argv[2]);
  if (!t.ok()) {
    printf("error %s\n", t.status().ToString().c_str());
    return 1;
  }
  static ChildHooks hooks{1};
  auto server = (*t)->NewServer(8);
  RegisterHandlers(*server, &hooks);
  Status st = server->Start(argv[3], static_cast<uint16_t>(atoi(argv[4])));
  if (!st.ok()) {
    printf("error %s\n", st.ToString().c_str());
    return 1;
  }
  std::string line = "port " + std::to_string(server->port()) + "\n";
  (void)!write(1, line.data(), line.size());
  while (true) pause();
}

// ---- the fixture ----

class TransportTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    name_ = GetParam();
    std::string why;
    host_ = ListenHost(name_, &why);
    ASSERT_EQ(why, "");
    auto t = MakeTestTransport(name_);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    transport_ = *t;
    server_ = transport_->NewServer(8);
    RegisterHandlers(*server_, nullptr);
    Status st = server_->Start(host_, 0);
    ASSERT_TRUE(st.ok()) << "server on " << host_ << ": " << st.ToString();
    ep_ = Endpoint{host_, server_->port()};
  }
  void TearDown() override {
    if (rdma()) {
      // Calls complete asynchronously: give the last ones a moment.
      auto until = Clock::now() + 10s;
      while (GetRdmaCounters().one_use_live != 0 && Clock::now() < until) std::this_thread::sleep_for(50ms);
      EXPECT_EQ(GetRdmaCounters().one_use_live, 0u) << "one-use RDMA registrations outlive the calls that made them";
    }
    if (server_) server_->Stop();
  }

  bool rdma() const { return name_ == "rdma"; }

  std::shared_ptr<Channel> Connect() {
    auto ch = transport_->Connect(ep_, kConnectTimeout);
    EXPECT_TRUE(ch.ok()) << "connect " << ep_.ToString() << ": " << ch.status().ToString();
    if (!ch.ok()) return nullptr;
    EXPECT_STREQ((*ch)->kind(), rdma() ? "rdma" : "tcp");
    return *ch;
  }

  std::string name_, host_;
  std::shared_ptr<Transport> transport_;
  std::unique_ptr<Server> server_;
  Endpoint ep_;
};

const size_t kSizes[] = {1, 4 * kKiB, kRdmaInlineBulk, kRdmaInlineBulk + 1, kMiB, 16 * kMiB, 64 * kMiB};

TEST_P(TransportTest, RequestBulkAllSizes) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  for (size_t len : kSizes) {
    SCOPED_TRACE("request bulk of " + std::to_string(len) + " bytes");
    // Plain heap memory at an odd address: user buffers are not aligned.
    std::string data(len + 1, '\0');
    Pattern(data.data() + 1, len, len + 7);
    RdmaCounters before = GetRdmaCounters();
    Status st = WriteFrom(*ch, data.data() + 1, len);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (rdma() && st.ok()) {
      RdmaCounters after = CountersAtLeast(before, len > kRdmaInlineBulk ? len : 0, 0, 2);
      if (len > kRdmaInlineBulk)
        EXPECT_GE(after.read_bytes - before.read_bytes, len) << "RDMA READ bytes did not grow by the bulk moved";
      else
        EXPECT_EQ(after.read_bytes, before.read_bytes) << "bulk of at most kRdmaInlineBulk rides in the message";
      EXPECT_GE(after.sends - before.sends, 2u) << "a request and a response are SENDs";
    }
  }
  EXPECT_TRUE(ch->healthy());
}

TEST_P(TransportTest, ResponseBulkAllSizes) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  for (size_t len : kSizes) {
    SCOPED_TRACE("response bulk of " + std::to_string(len) + " bytes");
    std::string buf(len + 64 + 1, '\0');
    RdmaCounters before = GetRdmaCounters();
    Status st = ReadPatternInto(*ch, len + 11, len, buf.data() + 1);
    EXPECT_TRUE(st.ok()) << st.ToString();
    if (rdma() && st.ok()) {
      RdmaCounters after = CountersAtLeast(before, 0, len > kRdmaInlineBulk ? len : 0, 2);
      if (len > kRdmaInlineBulk)
        EXPECT_GE(after.write_bytes - before.write_bytes, len) << "RDMA WRITE bytes did not grow by the bulk moved";
      else
        EXPECT_EQ(after.write_bytes, before.write_bytes) << "bulk of at most kRdmaInlineBulk rides in the message";
    }
  }
  EXPECT_TRUE(ch->healthy());
}

// Response bulk built in ServerCall::ReplyBuffer arrives the same, and on
// RDMA its WRITE reads that buffer directly: nothing is staged, where bulk
// from plain memory is copied into a staging buffer first.
TEST_P(TransportTest, ResponseBulkFromTheReplyBufferIsNotStaged) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  for (size_t len : {size_t{1}, kRdmaInlineBulk + 1, kMiB, 16 * kMiB + 7}) {
    std::string buf(len + 64, '\0');
    for (bool from_reply_buffer : {true, false}) {
      SCOPED_TRACE(std::to_string(len) + " bytes " + (from_reply_buffer ? "from the reply buffer" : "from plain memory"));
      RdmaCounters before = GetRdmaCounters();
      Status st = ReadPatternInto(*ch, len + 5, len, buf.data(), 1, from_reply_buffer);
      EXPECT_TRUE(st.ok()) << st.ToString();
      if (rdma() && st.ok() && len > kRdmaInlineBulk) {
        RdmaCounters after = CountersAtLeast(before, 0, len, 2);
        EXPECT_GE(after.write_bytes - before.write_bytes, len);
        if (from_reply_buffer)
          EXPECT_EQ(after.staged_bytes, before.staged_bytes) << "bulk built in the reply buffer was copied";
        else
          EXPECT_GE(after.staged_bytes - before.staged_bytes, len) << "staging is not counted";
      }
    }
  }
  EXPECT_TRUE(ch->healthy());
}

TEST_P(TransportTest, BulkBothWaysInOneCall) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  for (size_t len : {size_t{0}, size_t{100}, kRdmaInlineBulk + 1, 16 * kMiB + 3}) {
    SCOPED_TRACE(len);
    std::string out(len, '\0'), in(len + 64, '\0');
    Pattern(out.data(), len, 42 + len);
    Status st = EchoSegments(*ch, {{out.data(), out.size()}}, in.data());
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_P(TransportTest, GatheredBulkOfManySegments) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  struct Case {
    const char* what;
    size_t count;
    size_t (*len)(size_t i);
  };
  const Case cases[] = {
      {"300 tiny segments (inline on RDMA)", 300, [](size_t i) { return 1 + i % 20; }},
      {"1000 segments of 1 B..16 KiB", 1000, [](size_t i) { return 1 + (i * 7919) % (16 * kKiB); }},
      {"4096 pages (a 16 MiB iovec)", 4096, [](size_t) { return size_t{4096}; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    // Each segment in its own allocation, so none are adjacent.
    std::vector<std::string> pieces(c.count);
    std::vector<ConstBuf> segs;
    size_t total = 0;
    for (size_t i = 0; i < c.count; i++) {
      pieces[i].assign(c.len(i), '\0');
      Pattern(pieces[i].data(), pieces[i].size(), 1000 + i);
      segs.push_back({pieces[i].data(), pieces[i].size()});
      total += pieces[i].size();
    }
    Status st = WriteSegments(*ch, segs);
    EXPECT_TRUE(st.ok()) << "gathered request bulk, " << total << " bytes: " << st.ToString();
    std::string in(total + 64, '\0');
    st = EchoSegments(*ch, segs, in.data());
    EXPECT_TRUE(st.ok()) << "gathered echo, " << total << " bytes: " << st.ToString();
  }
  // Response bulk the server gathers from many segments.
  for (uint32_t pieces : {3u, 1000u, 4096u}) {
    SCOPED_TRACE("response bulk in " + std::to_string(pieces) + " segments");
    Status st = ReadPattern(*ch, pieces, 16 * kMiB + 5, pieces);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  EXPECT_TRUE(ch->healthy());
}

TEST_P(TransportTest, RegisteredMemoryBothWays) {
  // One region announced as libcfs registered buffers are; calls use pieces of
  // it at page-aligned and odd offsets, twice (the second time from the cache).
  Region r(80 * kMiB);
  ASSERT_NE(r.data(), nullptr);
  auto ch = Connect();
  ASSERT_TRUE(ch);
  const uint64_t cached0 = GetRdmaCounters().cached_registrations;
  RegisterMemory(r.data(), r.size());
  // (size, offset into the region): small ones at aligned and odd offsets,
  // the big ones once each (RDMA under emulation moves 10-60 MB/s).
  const std::pair<size_t, size_t> cases[] = {
      {kRdmaInlineBulk + 1, 0}, {kRdmaInlineBulk + 1, 4096 * 3}, {kRdmaInlineBulk + 1, 12345},
      {kMiB, 0},                {kMiB, 4096 * 5},                {kMiB, 12345},
      {16 * kMiB, 12345},       {64 * kMiB, 0}};
  for (int pass = 0; pass < 2; pass++) {
    for (auto [len, off] : cases) {
      {
        ASSERT_LE(off + len + 64, r.size());
        SCOPED_TRACE("pass " + std::to_string(pass) + ", " + std::to_string(len) + " bytes at offset " +
                     std::to_string(off) + " of a registered region");
        char* p = r.data() + off;
        Pattern(p, len, len + off + pass);
        RdmaCounters before = GetRdmaCounters();
        Status st = WriteFrom(*ch, p, len);
        EXPECT_TRUE(st.ok()) << "request bulk: " << st.ToString();
        st = ReadPatternInto(*ch, len * 3 + off, len, p);
        EXPECT_TRUE(st.ok()) << "response bulk: " << st.ToString();
        if (rdma()) {
          RdmaCounters after = CountersAtLeast(before, len, len, 4);
          EXPECT_GE(after.read_bytes - before.read_bytes, len);
          EXPECT_GE(after.write_bytes - before.write_bytes, len);
        }
      }
    }
  }
  if (rdma()) {
    EXPECT_GE(GetRdmaCounters().cached_registrations, cached0 + 1) << "the announced region is not in the registration cache";
  }
  UnregisterMemory(r.data());
  if (rdma()) {
    EXPECT_EQ(GetRdmaCounters().cached_registrations, cached0) << "UnregisterMemory left a cached registration behind";
  }
  // The same memory, no longer announced, still works as plain memory.
  Pattern(r.data(), kMiB, 99);
  Status st = WriteFrom(*ch, r.data(), kMiB);
  EXPECT_TRUE(st.ok()) << "after UnregisterMemory: " << st.ToString();
  st = ReadPatternInto(*ch, 98, kMiB, r.data());
  EXPECT_TRUE(st.ok()) << "after UnregisterMemory: " << st.ToString();
  EXPECT_TRUE(ch->healthy());
}

TEST_P(TransportTest, ManyCallsInFlightFromManyThreads) {
  // 8 threads each start 64 calls on one shared channel before waiting for
  // any: 512 in flight, far more than an RDMA connection's credits.
  auto ch = Connect();
  ASSERT_TRUE(ch);
  constexpr int kThreads = 8, kCalls = 64;
  std::atomic<int> bad{0}, verified{0};
  std::mutex mu;
  std::string first_error;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; t++) {
    threads.emplace_back([&, t] {
      struct Slot {
        int kind;
        size_t len;
        uint64_t seed;
        std::string out, in;
        pb::UnitIo req, resp;
        pb::XattrRequest xreq;
        pb::XattrResponse xresp;
        std::shared_ptr<PendingCall> call;
      };
      std::vector<Slot> slots(kCalls);
      for (int i = 0; i < kCalls; i++) {
        Slot& s = slots[i];
        s.seed = t * 1000 + i;
        s.kind = i % 3;  // 0: response bulk, 1: request bulk, 2: both
        // Mostly above the inline limit, some below, up to 192 KiB.
        s.len = (s.seed * 7919) % (192 * kKiB);
        CallSpec spec;
        spec.timeout = kCallTimeout;
        if (s.kind == 0) {
          s.req.set_ino(s.seed);
          s.req.set_length(s.len);
          s.in.assign(s.len, 'x');
          spec.method = pb::READ_UNIT;
          spec.request = &s.req;
          spec.bulk_in = s.in.data();
          spec.bulk_in_cap = s.len;
        } else if (s.kind == 1) {
          s.out.assign(s.len, '\0');
          Pattern(s.out.data(), s.len, s.seed);
          spec.method = pb::WRITE_UNIT;
          spec.request = &s.req;
          spec.response = &s.resp;
          spec.bulk_out = {{s.out.data(), s.len}};
        } else {
          s.out.assign(s.len, '\0');
          Pattern(s.out.data(), s.len, s.seed);
          s.in.assign(s.len, 'x');
          s.xreq.set_value(std::to_string(s.seed));
          spec.method = pb::SETXATTR;
          spec.request = &s.xreq;
          spec.response = &s.xresp;
          spec.bulk_out = {{s.out.data(), s.len}};
          spec.bulk_in = s.in.data();
          spec.bulk_in_cap = s.len;
        }
        s.call = ch->Start(spec);
      }
      for (int i = 0; i < kCalls; i++) {
        Slot& s = slots[i];
        Status st = s.call->Wait();
        if (st.ok()) {
          if (s.kind == 0) {
            std::string want(s.len, '\0');
            Pattern(want.data(), s.len, s.seed);
            if (s.call->bulk_in_len() != s.len || s.in != want) st = Status::IOError("response bulk differs");
          } else if (s.kind == 1) {
            if (s.resp.length() != s.len || s.resp.offset() != Sum(s.out.data(), s.len))
              st = Status::IOError("server received different request bulk");
          } else if (s.call->bulk_in_len() != s.len || s.in != s.out || s.xresp.value() != std::to_string(s.seed)) {
            st = Status::IOError("echo differs");
          }
        }
        if (st.ok()) {
          verified++;
        } else {
          bad++;
          std::lock_guard<std::mutex> g(mu);
          if (first_error.empty())
            first_error = "thread " + std::to_string(t) + " call " + std::to_string(i) + " (" +
                          std::to_string(s.len) + " bytes, kind " + std::to_string(s.kind) + "): " + st.ToString();
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0) << first_error;
  EXPECT_EQ(verified.load(), kThreads * kCalls);
  EXPECT_TRUE(ch->healthy());
}

TEST_P(TransportTest, ResponsesCompleteOutOfOrder) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  std::vector<std::shared_ptr<PendingCall>> calls;
  std::vector<pb::InoRequest> reqs(20);
  std::vector<pb::AttrResponse> resps(20);
  for (int i = 0; i < 20; i++) {
    reqs[i].set_ino((20 - i) * 20);  // the last sent finishes first
    CallSpec s;
    s.method = pb::GETATTR;
    s.request = &reqs[i];
    s.response = &resps[i];
    s.timeout = kCallTimeout;
    calls.push_back(ch->Start(s));
  }
  for (int i = 0; i < 20; i++) {
    Status st = calls[i]->Wait();
    EXPECT_TRUE(st.ok()) << i << ": " << st.ToString();
    EXPECT_EQ(resps[i].attr().ino(), static_cast<uint64_t>((20 - i) * 20));
  }
}

TEST_P(TransportTest, BodiesNearTheMessageLimit) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  // Request and response bodies just under kRdmaMaxMessage, alone and with a
  // bulk small enough to ride inline if it fitted beside the body.
  for (size_t body : {kRdmaMaxMessage - 1024, kRdmaMaxMessage - 256}) {
    for (size_t bulk : {size_t{0}, size_t{100}, kRdmaInlineBulk, kRdmaInlineBulk + 1}) {
      SCOPED_TRACE("body " + std::to_string(body) + ", bulk " + std::to_string(bulk));
      Status st = EchoBody(*ch, body, bulk, body + bulk);
      EXPECT_TRUE(st.ok()) << st.ToString();
    }
  }
  // A small request with a response body just under the limit.
  for (size_t body : {kRdmaMaxMessage - 1024, kRdmaMaxMessage - 256}) {
    Status st = BigResponseBody(*ch, body, body);
    EXPECT_TRUE(st.ok()) << "response body of " << body << " bytes: " << st.ToString();
  }
  // At and over the limit, request and response bodies: either it works, or
  // it fails cleanly with the channel still usable. Never a hang, corrupted
  // bytes or a broken connection.
  for (bool response : {false, true}) {
    for (size_t body : {kRdmaMaxMessage - 64, kRdmaMaxMessage, kRdmaMaxMessage + 1, 4 * kRdmaMaxMessage}) {
      const char* what = response ? "response" : "request";
      SCOPED_TRACE(std::string(what) + " body " + std::to_string(body));
      Status st = response ? BigResponseBody(*ch, body, body) : EchoBody(*ch, body, 0, body);
      printf("[ %s ] %s body of %zu bytes: %s\n", name_.c_str(), what, body, st.ToString().c_str());
      if (!st.ok()) {
        EXPECT_NE(st.err(), ETIMEDOUT) << st.ToString();
        EXPECT_EQ(st.message().find("differs"), std::string::npos) << "content corrupted: " << st.ToString();
      }
      EXPECT_TRUE(ch->healthy()) << "a too-large " << what << " body must not break the connection";
      Status after = ReadPattern(*ch, 5, 1000);
      EXPECT_TRUE(after.ok()) << "call after the " << body << "-byte " << what << " body: " << after.ToString();
    }
  }
}

TEST_P(TransportTest, ErrorsAndUnknownMethods) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  pb::LookupRequest req;
  req.set_name("zebra");
  pb::AttrResponse resp;
  CallSpec s;
  s.method = pb::LOOKUP;
  s.request = &req;
  s.response = &resp;
  s.timeout = kCallTimeout;
  Status st = ch->Call(s);
  EXPECT_EQ(st.err(), ENOENT) << st.ToString();
  EXPECT_NE(st.message().find("no entry zebra"), std::string::npos) << st.message();

  pb::Empty empty;
  CallSpec u;
  u.method = pb::STATFS;
  u.request = &empty;
  u.timeout = kCallTimeout;
  EXPECT_EQ(ch->Call(u).err(), EOPNOTSUPP);
  EXPECT_TRUE(ch->healthy());
  st = ReadPattern(*ch, 1, 100);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST_P(TransportTest, ResponseBulkLargerThanTheBufferIsAnError) {
  ChannelPool pool(transport_, 1, kConnectTimeout);
  auto ch = pool.Get(ep_);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  for (size_t len : {size_t{5000}, size_t{2 * kMiB}}) {
    SCOPED_TRACE(len);
    pb::UnitIo req;
    req.set_ino(3);
    req.set_length(len);
    std::string buf(100 + 64, 'x');
    CallSpec s;
    s.method = pb::READ_UNIT;
    s.request = &req;
    s.bulk_in = buf.data();
    s.bulk_in_cap = 100;
    s.timeout = kCallTimeout;
    Status st = (*ch)->Call(s);
    EXPECT_FALSE(st.ok()) << "a " << len << "-byte response bulk into a 100-byte buffer";
    EXPECT_NE(st.err(), ETIMEDOUT) << st.ToString();
    EXPECT_EQ(buf.substr(100), std::string(64, 'x')) << "bytes written past bulk_in_cap";
    // The connection (or, had it broken, the pool's next one) keeps working.
    auto next = pool.Get(ep_);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    st = ReadPattern(**next, 4, 5000);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_P(TransportTest, TimeoutFailsPromptlyAndThePoolRecovers) {
  ChannelPool pool(transport_, 1, kConnectTimeout);
  auto ch = pool.Get(ep_);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  auto t0 = Clock::now();
  Status st = Sleep(**ch, 3000, 300ms);
  EXPECT_EQ(st.err(), ETIMEDOUT) << st.ToString();
  EXPECT_LT(Clock::now() - t0, 2500ms) << "the timeout must not wait for the handler";
  // RDMA breaks a channel whose call timed out (the server may still write
  // into the buffer); either way the pool's channel works.
  auto next = pool.Get(ep_);
  ASSERT_TRUE(next.ok()) << next.status().ToString();
  st = Sleep(**next, 10, kCallTimeout);
  EXPECT_TRUE(st.ok()) << st.ToString();
  st = ReadPattern(**next, 5, 70000);
  EXPECT_TRUE(st.ok()) << st.ToString();
}

// A server process SIGKILLed while a 64 MiB transfer runs: the call fails
// with a connection error within a bound (not a hang, not a timeout), the
// channel reports !healthy(), and after a new server starts on the same port
// the pool reconnects and calls succeed.
class KillTest : public TransportTest {
 protected:
  // Kills the child while `call` runs; returns the call's status, or fails
  // the test if it does not complete within the bound.
  Status KillDuring(Child& child, const std::shared_ptr<PendingCall>& call) {
    auto t0 = Clock::now();
    kill(child.pid, SIGKILL);
    waitpid(child.pid, nullptr, 0);
    child.pid = -1;
    auto fut = std::async(std::launch::async, [call] { return call->Wait(); });
    if (fut.wait_for(60s) != std::future_status::ready) {
      ADD_FAILURE() << "the call hangs 60 s after its server was killed";
      fflush(stdout);
      _exit(1);  // the call owns buffers on this stack: we cannot go on
    }
    Status st = fut.get();
    printf("[ %s ] call failed %.2f s after SIGKILL: %s\n", name_.c_str(),
           std::chrono::duration<double>(Clock::now() - t0).count(), st.ToString().c_str());
    return st;
  }

  void ExpectConnectionError(const Status& st, Channel& ch) {
    EXPECT_FALSE(st.ok()) << "the call succeeded although its server was killed";
    EXPECT_NE(st.err(), ETIMEDOUT) << "failed by timeout, not by noticing the dead peer: " << st.ToString();
    EXPECT_TRUE(st.IsRetryable() || st.err() == ECONNABORTED || st.err() == EIO) << st.ToString();
    EXPECT_FALSE(ch.healthy()) << "the channel to a killed server still reports healthy";
  }

  // A new server on the port the killed one had; the pool reconnects.
  void RestartAndReconnect(ChannelPool& pool, const Endpoint& ep) {
    std::unique_ptr<Server> restarted;
    auto t0 = Clock::now();
    Status st;
    // The port is free once the kernel has torn down the dead process's
    // endpoints; that is quick but not instant. A fresh server per attempt.
    for (;;) {
      restarted = transport_->NewServer(8);
      RegisterHandlers(*restarted, nullptr);
      st = restarted->Start(host_, ep.port);
      if (st.ok() || Clock::now() - t0 > 20s) break;
      restarted.reset();
      std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(st.ok()) << "restart on port " << ep.port << ": " << st.ToString();
    printf("[ %s ] new server on port %u after %.2f s\n", name_.c_str(), ep.port,
           std::chrono::duration<double>(Clock::now() - t0).count());
    auto ch = pool.Get(ep);
    ASSERT_TRUE(ch.ok()) << "reconnect: " << ch.status().ToString();
    EXPECT_TRUE((*ch)->healthy());
    EXPECT_STREQ((*ch)->kind(), rdma() ? "rdma" : "tcp");
    st = ReadPattern(**ch, 77, kMiB + 1);
    EXPECT_TRUE(st.ok()) << "after reconnect: " << st.ToString();
    std::string data(kMiB, '\0');
    Pattern(data.data(), data.size(), 78);
    st = WriteFrom(**ch, data.data(), data.size());
    EXPECT_TRUE(st.ok()) << "after reconnect: " << st.ToString();
    restarted->Stop();
  }
};

TEST_P(KillTest, PeerKilledDuringResponseBulk) {
  ChannelPool pool(transport_, 1, kConnectTimeout);
  const size_t len = 64 * kMiB;
  std::string buf(len + 64, '\0');
  Endpoint ep;
  // On loopback TCP a 64 MiB reply may finish before the kill lands; then try
  // again (RDMA under emulation takes seconds for it).
  for (int attempt = 0;; attempt++) {
    Child child;
    Status st = SpawnServer(name_, host_, 0, &child);
    ASSERT_TRUE(st.ok()) << st.ToString();
    ep = Endpoint{host_, child.port};
    pool.Forget(ep);
    auto ch = pool.Get(ep);
    ASSERT_TRUE(ch.ok()) << ch.status().ToString();
    st = ReadPattern(**ch, 1, kMiB);  // the child serves
    ASSERT_TRUE(st.ok()) << st.ToString();

    pb::UnitIo req;
    req.set_ino(2);
    req.set_length(len);
    CallSpec s;
    s.method = pb::READ_UNIT;
    s.request = &req;
    s.bulk_in = buf.data();
    s.bulk_in_cap = len;
    s.timeout = kCallTimeout;
    auto call = (*ch)->Start(s);
    ASSERT_TRUE(WaitFor(child, "reply\n", 120s)) << "the child never started replying: " << child.seen;
    st = KillDuring(child, call);
    KillChild(child);
    if (st.ok() && attempt < 5) {
      printf("[ %s ] the 64 MiB reply completed before SIGKILL landed; again\n", name_.c_str());
      continue;
    }
    ExpectConnectionError(st, **ch);
    break;
  }
  RestartAndReconnect(pool, ep);
}

TEST_P(KillTest, PeerKilledDuringRequestBulk) {
  ChannelPool pool(transport_, 1, kConnectTimeout);
  Child child;
  Status st = SpawnServer(name_, host_, 0, &child);
  ASSERT_TRUE(st.ok()) << st.ToString();
  Endpoint ep{host_, child.port};
  auto ch = pool.Get(ep);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  ASSERT_TRUE(ReadPattern(**ch, 1, kMiB).ok());

  const size_t len = 64 * kMiB;
  std::string data(len, '\0');
  Pattern(data.data(), len, 3);
  pb::UnitIo req, resp;
  CallSpec s;
  s.method = pb::WRITE_UNIT;
  s.request = &req;
  s.response = &resp;
  s.bulk_out = {{data.data(), len}};
  s.timeout = kCallTimeout;
  auto call = (*ch)->Start(s);
  // The child's handler never answers; kill it 300 ms in, or as soon as the
  // whole bulk has arrived if that is sooner (fast loopback TCP).
  bool arrived = WaitFor(child, "bulk\n", 300ms);
  printf("[ %s ] SIGKILL %s the 64 MiB request bulk had fully arrived\n", name_.c_str(),
         arrived ? "after" : "before");
  st = KillDuring(child, call);
  KillChild(child);
  ExpectConnectionError(st, **ch);
  RestartAndReconnect(pool, ep);
}

std::string ParamName(const ::testing::TestParamInfo<std::string>& i) {
  std::string n;
  for (char c : i.param) n += isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(Env, TransportTest, ::testing::Values(TransportName()), ParamName);
INSTANTIATE_TEST_SUITE_P(Env, KillTest, ::testing::Values(TransportName()), ParamName);

}  // namespace
}  // namespace cfs::rpc

int main(int argc, char** argv) {
  // A server child for the kill cases (KillTest).
  if (argc >= 2 && strcmp(argv[1], "--serve") == 0) return cfs::rpc::ServeChild(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
