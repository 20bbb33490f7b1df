// RPC layer over real TCP on 127.0.0.1: pipelining from many threads, bulk in
// both directions checked by content, errors, timeouts, a server dying under a
// call, and hostile frames from a raw socket.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "common/checksum.h"
#include "rpc/channel_pool.h"
#include "rpc/frame.h"
#include "rpc/tcp_transport.h"

namespace cfs::rpc {
namespace {

using namespace std::chrono_literals;

void Pattern(char* p, size_t n, uint64_t seed) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    p[i] = static_cast<char>(x);
  }
}

uint64_t Sum(const void* p, size_t n) { return n ? BlockChecksum(p, n) : 0; }

// A server with a few test methods:
//   READ_UNIT   UnitIo{offset=seed, length}  -> bulk = Pattern(seed, length)
//   WRITE_UNIT  UnitIo + bulk                -> UnitIo{length=bulk size, offset=checksum(bulk)}
//   GETXATTR    XattrRequest + bulk          -> the same bulk back (echo)
//   LOOKUP      LookupRequest                -> error ENOENT "no entry <name>"
//   GETATTR     InoRequest{ino=ms}           -> sleeps ino ms, then AttrResponse{attr.ino=ms}
class RpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    transport_ = NewTcpTransport();
    StartServer();
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  void StartServer() {
    server_ = transport_->NewServer(8);
    RegisterHandlers(*server_);
    ASSERT_TRUE(server_->Start("127.0.0.1", 0).ok());
    ep_ = Endpoint{"127.0.0.1", server_->port()};
  }

  static void RegisterHandlers(Server& server) {
    server.Register(pb::READ_UNIT, [](ServerCall& c) {
      pb::UnitIo req;
      ASSERT_TRUE(DecodeBody(c.body(), &req).ok());
      auto buf = std::make_shared<std::string>(req.length(), '\0');
      Pattern(buf->data(), buf->size(), req.offset());
      pb::Empty resp;
      c.Reply(Status::OK(), &resp, {{buf->data(), buf->size()}});
    });
    server.Register(pb::WRITE_UNIT, [](ServerCall& c) {
      pb::UnitIo req;
      ASSERT_TRUE(DecodeBody(c.body(), &req).ok());
      pb::UnitIo resp;
      resp.set_length(c.bulk().size());
      resp.set_offset(Sum(c.bulk().data(), c.bulk().size()));
      c.Reply(Status::OK(), &resp);
    });
    server.Register(pb::GETXATTR, [](ServerCall& c) {
      pb::XattrResponse resp;
      c.Reply(Status::OK(), &resp, {{c.bulk().data(), c.bulk().size()}});
    });
    server.Register(pb::LOOKUP, Typed<pb::LookupRequest, pb::AttrResponse>(
                                    [](const pb::LookupRequest& r, pb::AttrResponse*) {
                                      return Status::NotFound("no entry " + r.name());
                                    }));
    server.Register(pb::GETATTR, Typed<pb::InoRequest, pb::AttrResponse>(
                                     [](const pb::InoRequest& r, pb::AttrResponse* a) {
                                       std::this_thread::sleep_for(std::chrono::milliseconds(r.ino()));
                                       a->mutable_attr()->set_ino(r.ino());
                                       return Status::OK();
                                     }));
  }

  std::shared_ptr<Channel> Connect() {
    auto ch = transport_->Connect(ep_, 2000ms);
    EXPECT_TRUE(ch.ok()) << ch.status().ToString();
    return ch.ok() ? *ch : nullptr;
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

  // Reads `len` pattern bytes with seed and checks them.
  Status ReadPattern(Channel& ch, uint64_t seed, size_t len) {
    pb::UnitIo req;
    req.set_offset(seed);
    req.set_length(len);
    std::string buf(len + 16, 'x');
    CallSpec s;
    s.method = pb::READ_UNIT;
    s.request = &req;
    s.bulk_in = buf.data();
    s.bulk_in_cap = len;
    auto call = ch.Start(s);
    CFS_RETURN_IF_ERROR(call->Wait());
    if (call->bulk_in_len() != len) return Status::IOError("bulk_in_len " + std::to_string(call->bulk_in_len()));
    std::string want(len, '\0');
    Pattern(want.data(), len, seed);
    if (buf.compare(0, len, want) != 0) return Status::IOError("bulk content differs");
    if (buf.substr(len) != std::string(16, 'x')) return Status::IOError("wrote past the buffer");
    return Status::OK();
  }

  // Sends `len` pattern bytes in 3 gathered pieces and checks the server's checksum.
  Status WritePattern(Channel& ch, uint64_t seed, size_t len) {
    std::string data(len, '\0');
    Pattern(data.data(), len, seed);
    pb::UnitIo req, resp;
    req.set_length(len);
    CallSpec s;
    s.method = pb::WRITE_UNIT;
    s.request = &req;
    s.response = &resp;
    size_t a = len / 3, b = len / 2;
    s.bulk_out = {{data.data(), a}, {data.data() + a, b - a}, {data.data() + b, len - b}};
    CFS_RETURN_IF_ERROR(ch.Call(s));
    if (resp.length() != len) return Status::IOError("server got " + std::to_string(resp.length()));
    if (resp.offset() != Sum(data.data(), len)) return Status::IOError("server got different bytes");
    return Status::OK();
  }

  std::shared_ptr<Transport> transport_;
  std::unique_ptr<Server> server_;
  Endpoint ep_;
};

TEST_F(RpcTest, BulkOutAndInAllSizes) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  for (size_t len : {size_t{0}, size_t{1}, size_t{4095}, size_t{65536}, size_t{(1 << 20) + 3},
                     size_t{16 << 20}, size_t{64 << 20}}) {
    SCOPED_TRACE(len);
    EXPECT_TRUE(WritePattern(*ch, len + 7, len).ok());
    Status st = ReadPattern(*ch, len + 11, len);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_F(RpcTest, EchoBulkBothWays) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  std::string out(3 << 20, '\0'), in(3 << 20, '\0');
  Pattern(out.data(), out.size(), 42);
  pb::XattrRequest req;
  pb::XattrResponse resp;
  CallSpec s;
  s.method = pb::GETXATTR;
  s.request = &req;
  s.response = &resp;
  s.bulk_out = {{out.data(), out.size()}};
  s.bulk_in = in.data();
  s.bulk_in_cap = in.size();
  auto call = ch->Start(s);
  ASSERT_TRUE(call->Wait().ok());
  EXPECT_EQ(call->bulk_in_len(), out.size());
  EXPECT_TRUE(in == out);
}

TEST_F(RpcTest, ManyThreadsPipelined) {
  ChannelPool pool(transport_, 2);
  std::atomic<int> bad{0}, done{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; t++) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 60; i++) {
        auto ch = pool.Get(ep_);
        if (!ch.ok()) {
          bad++;
          continue;
        }
        uint64_t seed = t * 1000 + i;
        size_t len = (seed * 7919) % (300 << 10);
        Status st = (i % 2) ? ReadPattern(**ch, seed, len) : WritePattern(**ch, seed, len);
        if (!st.ok()) bad++;
        done++;
      }
    });
  }
  // Several calls outstanding on one channel at once, answered out of order.
  auto ch = Connect();
  std::vector<std::shared_ptr<PendingCall>> calls;
  std::vector<pb::InoRequest> reqs(20);
  std::vector<pb::AttrResponse> resps(20);
  for (int i = 0; i < 20; i++) {
    reqs[i].set_ino((20 - i) * 5);  // the last sent finishes first
    CallSpec s;
    s.method = pb::GETATTR;
    s.request = &reqs[i];
    s.response = &resps[i];
    calls.push_back(ch->Start(s));
  }
  for (int i = 0; i < 20; i++) {
    EXPECT_TRUE(calls[i]->Wait().ok());
    EXPECT_EQ(resps[i].attr().ino(), static_cast<uint64_t>((20 - i) * 5));
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(done.load(), 16 * 60);
}

TEST_F(RpcTest, ErrorsPropagate) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  pb::LookupRequest req;
  req.set_name("zebra");
  pb::AttrResponse resp;
  CallSpec s;
  s.method = pb::LOOKUP;
  s.request = &req;
  s.response = &resp;
  Status st = ch->Call(s);
  EXPECT_EQ(st.err(), ENOENT);
  EXPECT_NE(st.message().find("no entry zebra"), std::string::npos) << st.message();
  // The connection stays usable after an error reply.
  EXPECT_TRUE(ReadPattern(*ch, 1, 100).ok());
}

TEST_F(RpcTest, UnknownMethodIsNotSupported) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  pb::Empty req;
  CallSpec s;
  s.method = pb::STATFS;
  s.request = &req;
  Status st = ch->Call(s);
  EXPECT_EQ(st.err(), EOPNOTSUPP) << st.ToString();
  EXPECT_TRUE(ch->healthy());
}

TEST_F(RpcTest, TimeoutThenChannelStillWorks) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  auto t0 = std::chrono::steady_clock::now();
  Status st = Sleep(*ch, 1500, 200ms);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(st.err(), ETIMEDOUT) << st.ToString();
  EXPECT_LT(took, 1000ms);
  // The late reply is discarded; other calls on the channel are unaffected.
  EXPECT_TRUE(Sleep(*ch, 10, 5000ms).ok());
  std::this_thread::sleep_for(1500ms);
  EXPECT_TRUE(ch->healthy());
  EXPECT_TRUE(ReadPattern(*ch, 5, 70000).ok());
}

TEST_F(RpcTest, ServerStoppedMidCall) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  Status st;
  std::thread caller([&] { st = Sleep(*ch, 3000, 10000ms); });
  std::this_thread::sleep_for(200ms);
  auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] { server_->Stop(); });
  caller.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);  // not after the handler
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE(st.IsRetryable()) << st.ToString();
  stopper.join();
  server_.reset();
  EXPECT_FALSE(ch->healthy());
  // New calls fail cleanly; a fresh connection is refused.
  EXPECT_FALSE(ReadPattern(*ch, 1, 10).ok());
  auto again = transport_->Connect(ep_, 1000ms);
  EXPECT_FALSE(again.ok());
  // A pool reconnects once the server is back (on a new port here).
  StartServer();
  ChannelPool pool(transport_, 1);
  auto ch2 = pool.Get(ep_);
  ASSERT_TRUE(ch2.ok());
  EXPECT_TRUE(ReadPattern(**ch2, 9, 1000).ok());
}

// Raw socket: sends bytes, returns true if the server closed the connection.
bool ServerDrops(uint16_t port, const std::string& bytes) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return false;
  }
  (void)!write(fd, bytes.data(), bytes.size());
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[256];
  ssize_t n;
  bool dropped = false;
  while (true) {
    n = read(fd, buf, sizeof buf);
    if (n == 0 || (n < 0 && errno == ECONNRESET)) {
      dropped = true;
      break;
    }
    if (n < 0) break;  // timeout: still open
  }
  close(fd);
  return dropped;
}

std::string Frame(const pb::RpcHeader& h, const std::string& rest = "") {
  std::string out;
  EncodeFramePrefix(h, &out);
  return out + rest;
}

TEST_F(RpcTest, MalformedFramesDropConnectionServerSurvives) {
  pb::RpcHeader good;
  good.set_version(1);
  good.set_call_id(1);
  good.set_method(pb::GETATTR);
  std::vector<std::pair<std::string, std::string>> cases;
  cases.push_back({"zero header length", std::string(4, '\0')});
  cases.push_back({"huge header length", std::string("\xff\xff\xff\x7f", 4)});
  cases.push_back({"garbage header", std::string("\x08\0\0\0", 4) + std::string(8, '\xff')});
  pb::RpcHeader h = good;
  h.set_version(2);
  cases.push_back({"wrong version", Frame(h)});
  h = good;
  h.set_body_len(100u << 20);
  cases.push_back({"body too large", Frame(h)});
  h = good;
  h.set_bulk_len(1ull << 40);
  cases.push_back({"bulk too large", Frame(h)});
  h = good;
  h.set_method(static_cast<pb::Method>(999));
  cases.push_back({"unknown method number", Frame(h)});
  h = good;
  h.set_is_response(true);
  cases.push_back({"response sent to a server", Frame(h)});
  for (auto& [what, bytes] : cases) {
    SCOPED_TRACE(what);
    EXPECT_TRUE(ServerDrops(server_->port(), bytes));
  }
  // A truncated frame followed by a close does not hurt the server either.
  {
    h = good;
    h.set_body_len(1000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string f = Frame(h, "abc");
    (void)!write(fd, f.data(), f.size());
    close(fd);
  }
  // A well-framed request with a body that does not parse: EPROTO reply, the
  // framing is intact so the connection stays.
  {
    h = good;
    h.set_call_id(77);
    h.set_body_len(3);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(server_->port());
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    std::string f = Frame(h, "\xff\xff\xff");
    ASSERT_EQ(write(fd, f.data(), f.size()), static_cast<ssize_t>(f.size()));
    uint8_t prefix[4];
    ASSERT_EQ(recv(fd, prefix, 4, MSG_WAITALL), 4);
    auto len = DecodeHeaderLength(prefix);
    ASSERT_TRUE(len.ok());
    std::string hb(*len, '\0');
    ASSERT_EQ(recv(fd, hb.data(), hb.size(), MSG_WAITALL), static_cast<ssize_t>(hb.size()));
    auto rh = DecodeHeader(hb);
    ASSERT_TRUE(rh.ok());
    EXPECT_TRUE(rh->is_response());
    EXPECT_EQ(rh->call_id(), 77u);
    EXPECT_EQ(rh->err(), EPROTO) << rh->err_msg();
    close(fd);
  }
  auto ch = Connect();
  ASSERT_TRUE(ch);
  EXPECT_TRUE(ReadPattern(*ch, 77, 1 << 20).ok());
  EXPECT_TRUE(Sleep(*ch, 1, 2000ms).ok());
}

TEST_F(RpcTest, ResponseBulkLargerThanBufferIsAnError) {
  auto ch = Connect();
  ASSERT_TRUE(ch);
  pb::UnitIo req;
  req.set_offset(3);
  req.set_length(5000);
  std::string buf(100, '\0');
  CallSpec s;
  s.method = pb::READ_UNIT;
  s.request = &req;
  s.bulk_in = buf.data();
  s.bulk_in_cap = buf.size();
  EXPECT_EQ(ch->Call(s).err(), EPROTO);
  EXPECT_TRUE(ReadPattern(*ch, 4, 5000).ok());  // the stream stayed in sync
}

// A Start that fails (port taken) leaves the server startable on another
// port: callers that pick ports retry with the same object.
TEST_F(RpcTest, FailedStartCanBeRetried) {
  auto other = transport_->NewServer(1);
  RegisterHandlers(*other);
  Status taken = other->Start("127.0.0.1", ep_.port);
  EXPECT_EQ(taken.err(), EADDRINUSE) << taken.ToString();
  ASSERT_TRUE(other->Start("127.0.0.1", 0).ok());
  EXPECT_NE(other->port(), ep_.port);
  auto ch = transport_->Connect({"127.0.0.1", other->port()}, 2000ms);
  ASSERT_TRUE(ch.ok()) << ch.status().ToString();
  EXPECT_TRUE(Sleep(**ch, 0, 2000ms).ok());
  other->Stop();
}

TEST(EndpointTest, Parse) {
  EXPECT_TRUE(Endpoint::Parse("127.0.0.1:7000").ok());
  EXPECT_EQ(Endpoint::Parse("[::1]:7000")->host, "::1");
  EXPECT_FALSE(Endpoint::Parse("host").ok());
  EXPECT_FALSE(Endpoint::Parse("host:0").ok());
  EXPECT_FALSE(Endpoint::Parse("host:70000").ok());
  EXPECT_FALSE(Endpoint::Parse("host:7a").ok());
  EXPECT_EQ(MakeTransport("bogus").status().err(), EINVAL);
}

}  // namespace
}  // namespace cfs::rpc
