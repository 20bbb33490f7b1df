#include "rpc/tcp_transport.h"

#include <algorithm>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <condition_variable>
#include <list>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/logging.h"
#include "rpc/bulk_pool.h"
#include "rpc/call_state.h"
#include "rpc/frame.h"

namespace cfs::rpc {
namespace {

using boost::asio::ip::tcp;
namespace asio = boost::asio;

Status FromAsio(const boost::system::error_code& ec, const std::string& what) {
  int e = ec.value();
  if (ec == asio::error::eof) e = ECONNRESET;
  if (ec.category() != boost::system::system_category() &&
      ec.category() != asio::error::get_system_category())
    e = EIO;
  if (e == 0) e = EIO;
  return Status(e, what + ": " + ec.message());
}

void TuneSocket(tcp::socket& s) {
  boost::system::error_code ec;
  s.set_option(tcp::no_delay(true), ec);
  s.set_option(asio::socket_base::send_buffer_size(4 << 20), ec);
  s.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
}

// Reads one frame's prefix, header and body. Bulk is left on the socket.
Status ReadHeaderAndBody(tcp::socket& s, pb::RpcHeader* h, std::string* body) {
  uint8_t prefix[kLengthPrefix];
  boost::system::error_code ec;
  asio::read(s, asio::buffer(prefix), ec);
  if (ec) return FromAsio(ec, "read frame");
  auto len = DecodeHeaderLength(prefix);
  if (!len.ok()) return len.status();
  std::string hb(*len, '\0');
  asio::read(s, asio::buffer(hb), ec);
  if (ec) return FromAsio(ec, "read frame header");
  auto hdr = DecodeHeader(hb);
  if (!hdr.ok()) return hdr.status();
  *h = std::move(*hdr);
  body->resize(h->body_len());
  if (h->body_len() > 0) {
    asio::read(s, asio::buffer(*body), ec);
    if (ec) return FromAsio(ec, "read frame body");
  }
  return Status::OK();
}

Status DiscardBulk(tcp::socket& s, uint64_t len) {
  char scratch[65536];
  boost::system::error_code ec;
  while (len > 0) {
    size_t n = std::min<uint64_t>(len, sizeof scratch);
    asio::read(s, asio::buffer(scratch, n), ec);
    if (ec) return FromAsio(ec, "read bulk");
    len -= n;
  }
  return Status::OK();
}

// Writes prefix|body|bulk as one gathered write.
Status WriteFrame(tcp::socket& s, const pb::RpcHeader& h, const std::string& body,
                  const std::vector<ConstBuf>& bulk) {
  std::string prefix;
  EncodeFramePrefix(h, &prefix);
  std::vector<asio::const_buffer> bufs;
  bufs.reserve(2 + bulk.size());
  bufs.emplace_back(prefix.data(), prefix.size());
  if (!body.empty()) bufs.emplace_back(body.data(), body.size());
  for (const auto& b : bulk)
    if (b.len) bufs.emplace_back(b.data, b.len);
  boost::system::error_code ec;
  asio::write(s, bufs, ec);
  if (ec) return FromAsio(ec, "write frame");
  return Status::OK();
}

uint64_t BulkLen(const std::vector<ConstBuf>& bulk) {
  uint64_t n = 0;
  for (const auto& b : bulk) n += b.len;
  return n;
}

// ---------------------------------------------------------------- client

class TcpChannel;

class TcpPendingCall : public PendingCall {
 public:
  TcpPendingCall(const CallSpec& spec, std::weak_ptr<TcpChannel> ch)
      : spec_(spec), channel_(std::move(ch)) {}
  Status Wait() override;
  uint64_t bulk_in_len() const override { return state_.bulk_len(); }
  void Complete(Status st, uint64_t bulk_len) { state_.Complete(std::move(st), bulk_len); }

  CallSpec spec_;
  uint64_t id_ = 0;
  std::weak_ptr<TcpChannel> channel_;
  bool receiving_ = false;  // guarded by the channel's pending mutex

 private:
  CallState state_;
};

class TcpChannel : public Channel, public std::enable_shared_from_this<TcpChannel> {
 public:
  const char* kind() const override { return "tcp"; }
  TcpChannel(Endpoint ep) : peer_(std::move(ep)), socket_(io_) {}
  ~TcpChannel() override {
    Shutdown();
    if (reader_.joinable()) reader_.join();
  }

  Status Connect(std::chrono::milliseconds timeout) {
    boost::system::error_code ec;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(peer_.host, std::to_string(peer_.port), ec);
    if (ec) return Status(EHOSTUNREACH, "resolve " + peer_.ToString() + ": " + ec.message());
    boost::system::error_code cec = asio::error::would_block;
    asio::async_connect(socket_, results,
                        [&](const boost::system::error_code& e, const tcp::endpoint&) { cec = e; });
    io_.run_for(timeout);
    if (cec == asio::error::would_block) {
      socket_.close(ec);
      return Status::TimedOut("connect " + peer_.ToString() + " timed out");
    }
    if (cec) {
      int e = cec.value() == ECONNREFUSED ? ECONNREFUSED : EHOSTUNREACH;
      return Status(e, "connect " + peer_.ToString() + ": " + cec.message());
    }
    TuneSocket(socket_);
    healthy_ = true;
    reader_ = std::thread([this] { ReadLoop(); });
    return Status::OK();
  }

  std::shared_ptr<PendingCall> Start(const CallSpec& spec) override {
    auto call = std::make_shared<TcpPendingCall>(spec, weak_from_this());
    pb::RpcHeader h;
    h.set_version(kWireVersion);
    h.set_method(spec.method);
    std::string body = spec.request ? spec.request->SerializeAsString() : std::string();
    h.set_body_len(static_cast<uint32_t>(body.size()));
    h.set_bulk_len(BulkLen(spec.bulk_out));
    {
      // Checked under the lock Fail() takes, so a call is either failed by
      // Fail() or never registered: it cannot be left pending forever.
      std::lock_guard<std::mutex> g(pending_mu_);
      if (failed_) {
        call->Complete(Status(ECONNRESET, "connection to " + peer_.ToString() + " is down"), 0);
        return call;
      }
      call->id_ = ++next_id_;
      pending_[call->id_] = call;
    }
    h.set_call_id(call->id_);
    Status st;
    {
      std::lock_guard<std::mutex> g(write_mu_);
      st = WriteFrame(socket_, h, body, spec.bulk_out);
    }
    if (!st.ok()) {
      Fail(st);
    }
    return call;
  }

  bool healthy() const override { return healthy_; }
  const Endpoint& peer() const override { return peer_; }

  // Called by a waiter that timed out. Returns true if the call was withdrawn
  // before the reader started filling its buffer.
  bool Withdraw(uint64_t id) {
    std::lock_guard<std::mutex> g(pending_mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return false;
    if (it->second->receiving_) return false;
    pending_.erase(it);
    return true;
  }

  void Shutdown() {
    healthy_ = false;
    boost::system::error_code ec;
    std::lock_guard<std::mutex> g(sock_mu_);
    socket_.shutdown(tcp::socket::shutdown_both, ec);
  }

 private:
  void ReadLoop() {
    while (true) {
      pb::RpcHeader h;
      std::string body;
      Status st = ReadHeaderAndBody(socket_, &h, &body);
      if (!st.ok()) {
        Fail(st);
        return;
      }
      std::shared_ptr<TcpPendingCall> call;
      {
        std::lock_guard<std::mutex> g(pending_mu_);
        auto it = pending_.find(h.call_id());
        if (it != pending_.end()) {
          call = it->second;
          call->receiving_ = true;
        }
      }
      if (!call) {  // withdrawn after a timeout: drop its bulk
        st = DiscardBulk(socket_, h.bulk_len());
        if (!st.ok()) { Fail(st); return; }
        continue;
      }
      Status result = h.err() == 0 ? Status::OK() : Status(h.err(), h.err_msg());
      uint64_t got = 0;
      if (h.bulk_len() > 0) {
        if (h.bulk_len() > call->spec_.bulk_in_cap || call->spec_.bulk_in == nullptr) {
          st = DiscardBulk(socket_, h.bulk_len());
          if (result.ok())
            result = Status::Protocol("response bulk of " + std::to_string(h.bulk_len()) +
                                      " bytes exceeds the buffer");
        } else {
          boost::system::error_code ec;
          asio::read(socket_, asio::buffer(call->spec_.bulk_in, h.bulk_len()), ec);
          if (ec) st = FromAsio(ec, "read bulk");
          got = h.bulk_len();
        }
      }
      if (result.ok() && call->spec_.response) result = DecodeBody(body, call->spec_.response);
      {
        std::lock_guard<std::mutex> g(pending_mu_);
        pending_.erase(h.call_id());
      }
      if (!st.ok()) {
        call->Complete(st, 0);
        Fail(st);
        return;
      }
      call->Complete(std::move(result), got);
    }
  }

  void Fail(const Status& why) {
    Shutdown();
    std::unordered_map<uint64_t, std::shared_ptr<TcpPendingCall>> calls;
    {
      std::lock_guard<std::mutex> g(pending_mu_);
      failed_ = true;
      // A call the reader is filling stays with the reader, which completes it
      // once its read returns (the shutdown above makes that prompt): its
      // caller must not get its buffers back while they are being written.
      const bool on_reader = std::this_thread::get_id() == reader_.get_id();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second->receiving_ && !on_reader) {
          ++it;
          continue;
        }
        calls.emplace(it->first, std::move(it->second));
        it = pending_.erase(it);
      }
    }
    Status st(why.IsRetryable() ? why.err() : ECONNRESET,
              "connection to " + peer_.ToString() + " failed: " + why.message());
    for (auto& [id, c] : calls) c->Complete(st, 0);
  }

  Endpoint peer_;
  asio::io_context io_;
  tcp::socket socket_;
  std::mutex sock_mu_;
  std::mutex write_mu_;
  std::mutex pending_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<TcpPendingCall>> pending_;
  uint64_t next_id_ = 0;
  bool failed_ = false;  // guarded by pending_mu_
  std::atomic<bool> healthy_{false};
  std::thread reader_;
};

Status TcpPendingCall::Wait() {
  if (!state_.WaitFor(spec_.timeout)) {
    auto ch = channel_.lock();
    if (ch && ch->Withdraw(id_)) return Status::TimedOut("call timed out");
    if (state_.WaitFor(std::chrono::milliseconds(0))) return state_.status();  // arrived meanwhile
    // The reader owns our buffer right now: break the connection so it stops.
    if (ch) ch->Shutdown();
    state_.Wait();
    if (state_.status().ok()) return state_.status();
    return Status::TimedOut("call timed out: " + state_.status().message());
  }
  return state_.status();
}

// ---------------------------------------------------------------- server

class TcpServer;

class TcpServerConn : public std::enable_shared_from_this<TcpServerConn> {
 public:
  TcpServerConn(TcpServer* server, tcp::socket s) : server_(server), socket_(std::move(s)) {
    boost::system::error_code ec;
    auto ep = socket_.remote_endpoint(ec);
    peer_ = ec ? "?" : ep.address().to_string() + ":" + std::to_string(ep.port());
  }
  void Run();
  void Close() {
    boost::system::error_code ec;
    socket_.shutdown(tcp::socket::shutdown_both, ec);
  }
  Status Send(const pb::RpcHeader& h, const std::string& body, const std::vector<ConstBuf>& bulk) {
    std::lock_guard<std::mutex> g(write_mu_);
    return WriteFrame(socket_, h, body, bulk);
  }
  void Done() {
    std::lock_guard<std::mutex> g(mu_);
    inflight_--;
    cv_.notify_all();
  }
  const std::string& peer() const { return peer_; }

 private:
  TcpServer* server_;
  tcp::socket socket_;
  std::string peer_;
  std::mutex write_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  int inflight_ = 0;
};

class TcpServerCall : public ServerCall {
 public:
  TcpServerCall(std::shared_ptr<TcpServerConn> conn, pb::RpcHeader h, std::string body,
                BulkBuffer bulk, size_t bulk_len)
      : conn_(std::move(conn)),
        h_(std::move(h)),
        body_(std::move(body)),
        bulk_(std::move(bulk)),
        bulk_len_(bulk_len) {}
  pb::Method method() const override { return h_.method(); }
  std::string_view body() const override { return body_; }
  std::string_view bulk() const override { return std::string_view(bulk_.get(), bulk_len_); }
  const std::string& peer() const override { return conn_->peer(); }
  bool replied() const override { return replied_; }
  char* ReplyBuffer(size_t len) override {
    reply_buf_ = BulkPool::Shared().Get(std::max<size_t>(len, 1));
    return reply_buf_.get();
  }
  void Reply(const Status& st, const google::protobuf::Message* response,
             std::vector<ConstBuf> bulk) override {
    if (replied_) return;
    replied_ = true;
    pb::RpcHeader h;
    h.set_version(kWireVersion);
    h.set_call_id(h_.call_id());
    h.set_method(h_.method());
    h.set_is_response(true);
    std::string body;
    if (st.ok()) {
      if (response) body = response->SerializeAsString();
      h.set_bulk_len(BulkLen(bulk));
    } else {
      h.set_err(st.err());
      h.set_err_msg(st.message());
      bulk.clear();
    }
    h.set_body_len(static_cast<uint32_t>(body.size()));
    Status ws = conn_->Send(h, body, bulk);
    if (!ws.ok()) conn_->Close();
  }
  std::shared_ptr<TcpServerConn> conn_;

 private:
  pb::RpcHeader h_;
  std::string body_;
  BulkBuffer bulk_;  // not zero-filled: the socket overwrites it
  size_t bulk_len_ = 0;
  BulkBuffer reply_buf_;
  bool replied_ = false;
};

class TcpServer : public Server {
 public:
  explicit TcpServer(int threads) : pool_(threads > 0 ? threads : 8), acceptor_(io_) {}
  ~TcpServer() override { Stop(); }

  void Register(pb::Method method, Handler handler) override { handlers_[method] = std::move(handler); }

  Status Start(const std::string& host, uint16_t port) override {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host, ec);
    if (ec) {
      tcp::resolver r(io_);
      auto res = r.resolve(host, std::to_string(port), ec);
      if (ec || res.empty()) return Status::Invalid("cannot resolve listen address " + host);
      addr = res.begin()->endpoint().address();
    }
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      boost::system::error_code ignored;
      acceptor_.close(ignored);  // so that Start can be tried again (another port)
      return Status(ec.value() ? ec.value() : EIO,
                    "listen on " + host + ":" + std::to_string(port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
    running_ = true;
    accept_thread_ = std::thread([this] { AcceptLoop(); });
    return Status::OK();
  }

  uint16_t port() const override { return port_; }

  void Stop() override {
    if (!running_.exchange(false)) return;
    boost::system::error_code ec;
    // shutdown(2) wakes a thread blocked in accept() on Linux; close() does not.
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    if (accept_thread_.joinable()) accept_thread_.join();
    acceptor_.close(ec);
    {
      std::unique_lock<std::mutex> lk(mu_);
      for (auto& w : conns_)
        if (auto c = w.lock()) c->Close();
      conns_cv_.wait(lk, [&] { return live_conn_threads_ == 0; });
    }
    pool_.join();
  }

  void Dispatch(std::shared_ptr<TcpServerConn> conn, pb::RpcHeader h, std::string body,
                BulkBuffer bulk, size_t bulk_len) {
    auto call = std::make_shared<TcpServerCall>(std::move(conn), std::move(h), std::move(body),
                                                std::move(bulk), bulk_len);
    asio::post(pool_, [this, call] {
      auto it = handlers_.find(call->method());
      if (it == handlers_.end()) {
        call->Reply(Status::NotSupported("method " + pb::Method_Name(call->method()) +
                                         " is not served here"),
                    nullptr, {});
      } else {
        try {
          it->second(*call);
        } catch (const std::exception& e) {
          LOG_ERROR("handler {} threw: {}", pb::Method_Name(call->method()), e.what());
          if (!call->replied()) call->Reply(Status::IOError(std::string("internal error: ") + e.what()), nullptr, {});
        }
        if (!call->replied()) call->Reply(Status::IOError("handler did not reply"), nullptr, {});
      }
      call->conn_->Done();
    });
  }

  bool running() const { return running_; }

 private:
  void AcceptLoop() {
    while (running_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (!running_) return;
      if (ec) {
        if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        continue;
      }
      TuneSocket(s);
      auto conn = std::make_shared<TcpServerConn>(this, std::move(s));
      std::lock_guard<std::mutex> g(mu_);
      conns_.remove_if([](const std::weak_ptr<TcpServerConn>& w) { return w.expired(); });
      conns_.push_back(conn);
      live_conn_threads_++;
      // Detached, so a long-lived server does not keep a finished thread per
      // past connection; Stop() waits for live_conn_threads_ to drop to 0.
      std::thread([this, conn]() mutable {
        conn->Run();
        conn.reset();
        std::lock_guard<std::mutex> g2(mu_);
        live_conn_threads_--;
        conns_cv_.notify_all();
      }).detach();
    }
  }

  asio::thread_pool pool_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::unordered_map<int, Handler> handlers_;
  std::atomic<bool> running_{false};
  uint16_t port_ = 0;
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::weak_ptr<TcpServerConn>> conns_;
  std::condition_variable conns_cv_;
  int live_conn_threads_ = 0;
};

constexpr int kMaxInflightPerConn = 64;

void TcpServerConn::Run() {
  while (server_->running()) {
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return inflight_ < kMaxInflightPerConn; });
      inflight_++;
    }
    pb::RpcHeader h;
    std::string body;
    BulkBuffer bulk;
    Status st = ReadHeaderAndBody(socket_, &h, &body);
    if (st.ok() && h.bulk_len() > 0) {
      bulk = BulkPool::Shared().Get(h.bulk_len());
      if (!bulk) {
        st = Status(ENOMEM, "no memory for a request bulk of " + std::to_string(h.bulk_len()) + " bytes");
      } else {
        boost::system::error_code ec;
        asio::read(socket_, asio::buffer(bulk.get(), h.bulk_len()), ec);
        if (ec) st = FromAsio(ec, "read bulk");
      }
    }
    if (st.ok() && h.is_response()) st = Status::Protocol("unexpected response frame");
    if (!st.ok()) {
      if (st.err() == EPROTO) LOG_WARN("dropping connection from {}: {}", peer_, st.ToString());
      Done();
      Close();
      break;
    }
    const size_t bulk_len = h.bulk_len();
    server_->Dispatch(shared_from_this(), std::move(h), std::move(body), std::move(bulk), bulk_len);
  }
  // Wait for our in-flight handlers so their replies find a live socket object.
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return inflight_ == 0; });
}

class TcpTransport : public Transport {
 public:
  std::string name() const override { return "tcp"; }
  Result<std::shared_ptr<Channel>> Connect(const Endpoint& ep,
                                           std::chrono::milliseconds timeout) override {
    auto ch = std::make_shared<TcpChannel>(ep);
    CFS_RETURN_IF_ERROR(ch->Connect(timeout));
    return std::shared_ptr<Channel>(ch);
  }
  std::unique_ptr<Server> NewServer(int threads) override {
    return std::make_unique<TcpServer>(threads);
  }
};

}  // namespace

std::shared_ptr<Transport> NewTcpTransport() { return std::make_shared<TcpTransport>(); }

}  // namespace cfs::rpc
