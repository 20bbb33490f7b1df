#include "rpc/rdma_transport.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <rdma/rdma_cma.h>

#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "common/logging.h"
#include "rpc/call_state.h"
#include "rpc/frame.h"
#include "rpc/rdma_conn.h"

namespace cfs::rpc {
namespace {

using rdma::RdmaConn;
using rdma::Segment;
using rdma::WrBatch;

// ---- wire format of one message (docs/wire-protocol.md, "RDMA") ----
//   WireHead | RpcHeader bytes | body | inline bulk | Segment[nseg]
constexpr uint32_t kMagic = 0x52534643;  // "CFSR"
struct WireHead {
  uint32_t magic;
  uint32_t hdr_len;
  uint32_t body_len;
  uint32_t inline_len;
  uint32_t nseg;      // requests: bulk_out segments for the server to READ
  uint32_t sink_rkey;  // requests: where the server WRITEs response bulk
  uint64_t sink_addr;
  uint64_t sink_cap;  // 0 = no sink (response bulk must ride inline)
};
static_assert(sizeof(WireHead) == 40);
static_assert(sizeof(Segment) == 16);

struct Hello {  // rdma_cm private data
  uint32_t magic;
  uint32_t depth;
};

struct Message {
  pb::RpcHeader header;
  std::string_view body, inline_bulk;
  std::vector<Segment> segs;
  uint64_t sink_addr = 0, sink_cap = 0;
  uint32_t sink_rkey = 0;
};

size_t Encode(char* out, const pb::RpcHeader& h, std::string_view body, std::string_view inline_bulk,
              const std::vector<Segment>& segs, uint64_t sink_addr, uint32_t sink_rkey, uint64_t sink_cap) {
  const std::string hdr = h.SerializeAsString();
  WireHead w{kMagic, static_cast<uint32_t>(hdr.size()), static_cast<uint32_t>(body.size()),
             static_cast<uint32_t>(inline_bulk.size()), static_cast<uint32_t>(segs.size()), sink_rkey,
             sink_addr, sink_cap};
  char* p = out;
  std::memcpy(p, &w, sizeof w);
  p += sizeof w;
  std::memcpy(p, hdr.data(), hdr.size());
  p += hdr.size();
  if (!body.empty()) std::memcpy(p, body.data(), body.size());
  p += body.size();
  if (!inline_bulk.empty()) std::memcpy(p, inline_bulk.data(), inline_bulk.size());
  p += inline_bulk.size();
  if (!segs.empty()) std::memcpy(p, segs.data(), segs.size() * sizeof(Segment));
  p += segs.size() * sizeof(Segment);
  return static_cast<size_t>(p - out);
}

size_t EncodedSize(size_t hdr, size_t body, size_t inl, size_t nseg) {
  return sizeof(WireHead) + hdr + body + inl + nseg * sizeof(Segment);
}

// Parses a received message; views point into `bytes`. Hostile input is EPROTO.
Result<Message> Decode(std::string_view bytes) {
  WireHead w;
  if (bytes.size() < sizeof w) return Status::Protocol("RDMA message too short");
  std::memcpy(&w, bytes.data(), sizeof w);
  if (w.magic != kMagic) return Status::Protocol("RDMA message with a bad magic number");
  const uint64_t need = uint64_t{sizeof w} + w.hdr_len + w.body_len + w.inline_len +
                        uint64_t{w.nseg} * sizeof(Segment);
  if (need != bytes.size() || w.hdr_len > kMaxHeaderLen)
    return Status::Protocol("RDMA message lengths disagree with its size");
  Message m;
  size_t off = sizeof w;
  CFS_ASSIGN_OR_RETURN(m.header, DecodeHeader(bytes.substr(off, w.hdr_len)));
  off += w.hdr_len;
  m.body = bytes.substr(off, w.body_len);
  off += w.body_len;
  m.inline_bulk = bytes.substr(off, w.inline_len);
  off += w.inline_len;
  m.segs.resize(w.nseg);
  if (w.nseg) std::memcpy(m.segs.data(), bytes.data() + off, w.nseg * sizeof(Segment));
  uint64_t seg_total = 0;
  for (const Segment& s : m.segs) seg_total += s.len;
  if (w.inline_len != 0 && w.nseg != 0) return Status::Protocol("RDMA message with both inline and remote bulk");
  // A request names all of its bulk; a response's bulk is inline or already
  // written into the caller's sink.
  const bool named = !m.header.is_response() || w.inline_len != 0 || w.nseg != 0;
  if (named && seg_total + w.inline_len != m.header.bulk_len())
    return Status::Protocol("RDMA message bulk segments disagree with bulk_len");
  m.sink_addr = w.sink_addr;
  m.sink_rkey = w.sink_rkey;
  m.sink_cap = w.sink_cap;
  return m;
}

Result<sockaddr_storage> Resolve(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  int e = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (e != 0 || !res) return Status(EHOSTUNREACH, "resolve " + host + ": " + gai_strerror(e));
  sockaddr_storage ss{};
  std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return ss;
}

// Waits for the next event on a connecting id's channel (blocking fd).
Result<rdma_cm_event_type> NextEvent(rdma_event_channel* ec, std::chrono::milliseconds timeout,
                                     Hello* accepted = nullptr) {
  pollfd p{ec->fd, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (r == 0) return Status(ETIMEDOUT, "rdma_cm event timed out");
  if (r < 0) return Status::FromErrno(errno, "poll");
  rdma_cm_event* ev;
  if (rdma_get_cm_event(ec, &ev) != 0) return Status::FromErrno(errno, "rdma_get_cm_event");
  rdma_cm_event_type t = ev->event;
  if (accepted && t == RDMA_CM_EVENT_ESTABLISHED && ev->param.conn.private_data_len >= sizeof(Hello))
    std::memcpy(accepted, ev->param.conn.private_data, sizeof(Hello));
  int status = ev->status;
  rdma_ack_cm_event(ev);
  if (t == RDMA_CM_EVENT_REJECTED)
    return Status(ECONNREFUSED, "RDMA connection refused (no RDMA listener there?) status " + std::to_string(status));
  if (t == RDMA_CM_EVENT_ADDR_ERROR || t == RDMA_CM_EVENT_ROUTE_ERROR || t == RDMA_CM_EVENT_UNREACHABLE ||
      t == RDMA_CM_EVENT_CONNECT_ERROR)
    return Status(EHOSTUNREACH, std::string("RDMA ") + rdma_event_str(t) + " (status " + std::to_string(status) + ")");
  return t;
}

Status ExpectEvent(rdma_event_channel* ec, rdma_cm_event_type want, std::chrono::milliseconds timeout,
                   Hello* accepted = nullptr) {
  CFS_ASSIGN_OR_RETURN(rdma_cm_event_type t, NextEvent(ec, timeout, accepted));
  if (t != want)
    return Status(EHOSTUNREACH, std::string("RDMA set-up: expected ") + rdma_event_str(want) + ", got " +
                                    rdma_event_str(t));
  return Status::OK();
}

Status CheckDevice(rdma_cm_id* id, const std::string& want) {
  if (want.empty()) return Status::OK();
  const char* have = ibv_get_device_name(id->verbs->device);
  if (want != have)
    return Status(ENODEV, "RDMA device " + std::string(have) + " serves this address, not the configured " + want);
  return Status::OK();
}

void LooseTimeouts(rdma_cm_id* id) {
  // Emulated RDMA (Soft-RoCE) stalls for tens of ms: give RC retries room
  // (4.096 us * 2^18 = about 1 s per retry).
  uint8_t t = 18;
  rdma_set_option(id, RDMA_OPTION_ID, RDMA_OPTION_ID_ACK_TIMEOUT, &t, sizeof t);
}

rdma_conn_param ConnParam(const Hello* pd, ibv_context* ctx) {
  rdma_conn_param p{};
  p.private_data = pd;
  p.private_data_len = sizeof *pd;
  ibv_device_attr da{};
  ibv_query_device(ctx, &da);
  const int rd = std::min(16, std::max(1, da.max_qp_rd_atom));
  p.initiator_depth = static_cast<uint8_t>(rd);
  p.responder_resources = static_cast<uint8_t>(rd);
  p.retry_count = 7;
  p.rnr_retry_count = 7;
  return p;
}

// ================================================================ client

class RdmaChannel;

class RdmaPendingCall : public PendingCall {
 public:
  Status Wait() override;
  uint64_t bulk_in_len() const override { return state_.bulk_len(); }

  // Called once the QP can no longer touch the call's memory (a response
  // arrived, or the connection is broken).
  void Complete(Status st, uint64_t got) {
    {
      std::lock_guard<std::mutex> g(mu_);
      leases_.clear();
      staging_ = rdma::RegBuf();
      small_sink_ = rdma::RegBuf();  // copied out already (OnResponse)
    }
    state_.Complete(std::move(st), got);
  }

  CallSpec spec_;
  uint64_t id_ = 0;
  std::vector<rdma::MrLease> leases_;
  rdma::RegBuf staging_;     // bulk_out copied when its segments would not fit a message
  rdma::RegBuf small_sink_;  // response bulk lands here for a small bulk_in
  std::weak_ptr<RdmaChannel> channel_;

 private:
  std::mutex mu_;  // guards the registrations against a racing second Complete
  CallState state_;
};

class RdmaChannel : public Channel, public std::enable_shared_from_this<RdmaChannel> {
 public:
  RdmaChannel(Endpoint ep, const RdmaOptions& opts) : peer_(std::move(ep)), opts_(opts) {}
  ~RdmaChannel() override {
    // Break first (QP to ERR, then every pending call fails), so no caller
    // gets memory back that the server could still write.
    if (conn_) conn_->Break(Status(ECONNRESET, "channel closed"));
    conn_.reset();  // drains the QP before the id goes
    if (id_) rdma_destroy_id(id_);
    if (ec_) rdma_destroy_event_channel(ec_);
  }
  const char* kind() const override { return "rdma"; }
  bool healthy() const override { return conn_ && !conn_->broken(); }
  const Endpoint& peer() const override { return peer_; }

  Status Connect(std::chrono::milliseconds timeout) {
    const std::string where = "RDMA connect to " + peer_.ToString();
    auto fail = [&](const Status& st) { return Status(st.err(), where + ": " + st.message()); };
    ec_ = rdma_create_event_channel();
    if (!ec_) return fail(Status::FromErrno(errno, "rdma_create_event_channel"));
    if (rdma_create_id(ec_, &id_, nullptr, RDMA_PS_TCP) != 0) return fail(Status::FromErrno(errno, "rdma_create_id"));
    auto dst = Resolve(peer_.host, peer_.port);
    if (!dst.ok()) return fail(dst.status());
    const int ms = static_cast<int>(std::max<int64_t>(2000, timeout.count()));
    if (rdma_resolve_addr(id_, nullptr, reinterpret_cast<sockaddr*>(&*dst), ms) != 0)
      return fail(Status(EHOSTUNREACH, std::string("no RDMA device reaches it: ") + std::strerror(errno)));
    Status st = ExpectEvent(ec_, RDMA_CM_EVENT_ADDR_RESOLVED, std::chrono::milliseconds(ms + 1000));
    if (!st.ok()) return fail(st);
    st = CheckDevice(id_, opts_.device);
    if (!st.ok()) return fail(st);
    LooseTimeouts(id_);
    if (rdma_resolve_route(id_, ms) != 0) return fail(Status::FromErrno(errno, "rdma_resolve_route"));
    st = ExpectEvent(ec_, RDMA_CM_EVENT_ROUTE_RESOLVED, std::chrono::milliseconds(ms + 1000));
    if (!st.ok()) return fail(st);
    auto conn = RdmaConn::Create(
        id_, opts_.queue_depth,
        [this](const char* msg, size_t len) { OnResponse(std::string_view(msg, len)); },
        [this](const Status& why) { FailAll(why); });
    if (!conn.ok()) return fail(conn.status());
    conn_ = std::move(*conn);
    Hello cp{kMagic, static_cast<uint32_t>(opts_.queue_depth)};
    rdma_conn_param param = ConnParam(&cp, id_->verbs);
    if (rdma_connect(id_, &param) != 0) return fail(Status::FromErrno(errno, "rdma_connect"));
    Hello accepted{0, 0};
    st = ExpectEvent(ec_, RDMA_CM_EVENT_ESTABLISHED, std::chrono::milliseconds(ms + 1000), &accepted);
    if (!st.ok()) return fail(st);
    credits_ = static_cast<int>(accepted.magic == kMagic && accepted.depth > 0
                                    ? std::min<uint32_t>(accepted.depth, opts_.queue_depth)
                                    : 1);
    // From here on the channel's cm events (DISCONNECTED) go to its poller.
    return conn_->WatchCmEvents(ec_);
  }

  std::shared_ptr<PendingCall> Start(const CallSpec& spec) override {
    auto call = std::make_shared<RdmaPendingCall>();
    call->spec_ = spec;
    call->channel_ = weak_from_this();
    Status st = Issue(call);
    if (!st.ok()) call->Complete(st, 0);
    return call;
  }

  // A waiter timed out: the channel is broken first, so the server can no
  // longer write into the caller's memory.
  void TimedOut(const std::string& what) {
    if (conn_) conn_->Break(Status(ETIMEDOUT, what));
  }

 private:
  Status Issue(const std::shared_ptr<RdmaPendingCall>& call) {
    const CallSpec& spec = call->spec_;
    std::string body = spec.request ? spec.request->SerializeAsString() : std::string();
    uint64_t bulk = 0;
    for (const ConstBuf& b : spec.bulk_out) bulk += b.len;
    if (bulk > kMaxBulkLen) return Status::Invalid("request bulk of " + std::to_string(bulk) + " bytes is too large");
    pb::RpcHeader h;
    h.set_version(kWireVersion);
    h.set_method(spec.method);
    h.set_body_len(static_cast<uint32_t>(body.size()));
    h.set_bulk_len(bulk);
    h.set_call_id(UINT64_MAX);  // sized with the largest id
    const size_t hdr = h.ByteSizeLong();
    ibv_pd* pd = conn_->pd();

    // Bulk: inline when small, else segments the server READs.
    std::string inline_bulk;
    std::vector<Segment> segs;
    if (bulk > 0 && bulk <= kRdmaInlineBulk && EncodedSize(hdr, body.size(), bulk, 0) <= kRdmaMaxMessage) {
      inline_bulk.reserve(bulk);
      for (const ConstBuf& b : spec.bulk_out) inline_bulk.append(static_cast<const char*>(b.data), b.len);
    } else if (bulk > 0) {
      size_t pieces = 0;
      for (const ConstBuf& b : spec.bulk_out) pieces += b.len > 0;
      if (EncodedSize(hdr, body.size(), 0, pieces) <= kRdmaMaxMessage) {
        for (const ConstBuf& b : spec.bulk_out) {
          if (b.len == 0) continue;
          CFS_ASSIGN_OR_RETURN(rdma::MrLease l, rdma::Lease(pd, b.data, b.len, IBV_ACCESS_REMOTE_READ));
          segs.push_back({reinterpret_cast<uint64_t>(b.data), l.rkey(), static_cast<uint32_t>(b.len)});
          call->leases_.push_back(std::move(l));
        }
      } else {  // too many pieces to name: gather them into one registered buffer
        CFS_ASSIGN_OR_RETURN(call->staging_, rdma::GetRegBuf(pd, bulk));
        size_t off = 0;
        for (const ConstBuf& b : spec.bulk_out) {
          std::memcpy(call->staging_.data() + off, b.data, b.len);
          off += b.len;
        }
        CFS_ASSIGN_OR_RETURN(rdma::MrLease l, rdma::Lease(pd, call->staging_.data(), bulk, IBV_ACCESS_REMOTE_READ));
        segs.push_back({reinterpret_cast<uint64_t>(call->staging_.data()), l.rkey(), static_cast<uint32_t>(bulk)});
        call->leases_.push_back(std::move(l));
      }
    }
    if (EncodedSize(hdr, body.size(), inline_bulk.size(), segs.size()) > kRdmaMaxMessage)
      return Status(EMSGSIZE, "request of " + std::to_string(body.size()) + " body bytes exceeds the RDMA message limit of " +
                                  std::to_string(kRdmaMaxMessage));
    // Response bulk lands by RDMA WRITE when it does not ride inline: into
    // bulk_in itself, or for small buffers into a pooled registered one
    // (copied out on completion), so a small read needs no registration.
    uint64_t sink_addr = 0, sink_cap = 0;
    uint32_t sink_rkey = 0;
    if (spec.bulk_in && spec.bulk_in_cap > 0 && spec.bulk_in_cap <= kRdmaInlineBulk) {
      CFS_ASSIGN_OR_RETURN(call->small_sink_, rdma::GetRegBuf(pd, spec.bulk_in_cap));
      sink_addr = reinterpret_cast<uint64_t>(call->small_sink_.data());
      sink_cap = spec.bulk_in_cap;
      sink_rkey = call->small_sink_.rkey();
    } else if (spec.bulk_in && spec.bulk_in_cap > kRdmaInlineBulk) {
      CFS_ASSIGN_OR_RETURN(rdma::MrLease l, rdma::Lease(pd, spec.bulk_in, spec.bulk_in_cap,
                                                        IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE));
      sink_addr = reinterpret_cast<uint64_t>(spec.bulk_in);
      sink_cap = spec.bulk_in_cap;
      sink_rkey = l.rkey();
      call->leases_.push_back(std::move(l));
    }

    // A credit: the server has a receive buffer for us.
    {
      std::unique_lock<std::mutex> g(mu_);
      const auto deadline = std::chrono::steady_clock::now() + spec.timeout;
      if (!credit_cv_.wait_until(g, deadline, [&] { return credits_ > 0 || failed_; }))
        return Status(ETIMEDOUT, "no RDMA credit from " + peer_.ToString() + " within the call's timeout");
      if (failed_) return Status(ECONNRESET, "RDMA connection to " + peer_.ToString() + " is down");
      credits_--;
      call->id_ = ++next_id_;
      pending_[call->id_] = call;
    }
    h.set_call_id(call->id_);
    Status st = conn_->Send(
        [&](char* out) { return Encode(out, h, body, inline_bulk, segs, sink_addr, sink_rkey, sink_cap); },
        nullptr);
    if (!st.ok()) {
      conn_->Break(st);  // fails every pending call, this one included
      return Status::OK();
    }
    return Status::OK();
  }

  void OnResponse(std::string_view bytes) {
    auto m = Decode(bytes);
    if (!m.ok()) {
      LOG_WARN("bad RDMA response from {}: {}", peer_.ToString(), m.status().ToString());
      conn_->Break(m.status());
      return;
    }
    std::shared_ptr<RdmaPendingCall> call;
    {
      std::lock_guard<std::mutex> g(mu_);
      credits_++;
      credit_cv_.notify_one();
      auto it = pending_.find(m->header.call_id());
      if (it == pending_.end()) return;
      call = std::move(it->second);
      pending_.erase(it);
    }
    const CallSpec& spec = call->spec_;
    Status result = m->header.err() == 0 ? Status::OK() : Status(m->header.err(), m->header.err_msg());
    uint64_t got = 0;
    const uint64_t bulk = m->header.bulk_len();
    if (result.ok() && bulk > 0) {
      if (bulk > spec.bulk_in_cap || !spec.bulk_in) {
        result = Status::Protocol("response bulk of " + std::to_string(bulk) + " bytes exceeds the buffer");
      } else if (!m->inline_bulk.empty()) {
        std::memcpy(spec.bulk_in, m->inline_bulk.data(), m->inline_bulk.size());
        got = bulk;
      } else {
        got = bulk;  // the server wrote it before sending this
        if (call->small_sink_) std::memcpy(spec.bulk_in, call->small_sink_.data(), bulk);
      }
    }
    if (result.ok() && spec.response) result = DecodeBody(m->body, spec.response);
    call->Complete(std::move(result), got);
  }

  void FailAll(const Status& why) {
    std::unordered_map<uint64_t, std::shared_ptr<RdmaPendingCall>> calls;
    {
      std::lock_guard<std::mutex> g(mu_);
      failed_ = true;
      calls.swap(pending_);
      credit_cv_.notify_all();
    }
    Status st(why.err() == ETIMEDOUT ? ETIMEDOUT : ECONNRESET,
              "RDMA connection to " + peer_.ToString() + " failed: " + why.message());
    for (auto& [id, c] : calls) c->Complete(st, 0);
  }

  Endpoint peer_;
  RdmaOptions opts_;
  rdma_event_channel* ec_ = nullptr;
  rdma_cm_id* id_ = nullptr;
  std::unique_ptr<RdmaConn> conn_;
  std::mutex mu_;
  std::condition_variable credit_cv_;
  int credits_ = 0;
  bool failed_ = false;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::shared_ptr<RdmaPendingCall>> pending_;
};

Status RdmaPendingCall::Wait() {
  if (!state_.WaitFor(spec_.timeout)) {
    const std::string what = "RDMA call " + pb::Method_Name(spec_.method) + " timed out after " +
                             std::to_string(spec_.timeout.count()) + " ms";
    if (auto ch = channel_.lock()) ch->TimedOut(what);
    Complete(Status(ETIMEDOUT, what), 0);
  }
  return state_.status();
}

// ================================================================ server

class RdmaServer;

// One accepted connection. Calls in flight hold it, so its QP and id outlive
// a disconnect until the last of them has replied.
struct ServerConn {
  std::unique_ptr<RdmaConn> conn;
  rdma_cm_id* id = nullptr;
  std::string peer;
  ~ServerConn() {
    conn.reset();
    if (id) rdma_destroy_id(id);
  }
};

class RdmaServerCall : public ServerCall {
 public:
  RdmaServerCall(std::shared_ptr<ServerConn> sc, pb::RpcHeader h, std::string body, rdma::RegBuf bulk,
                 size_t bulk_len, uint64_t sink_addr, uint32_t sink_rkey, uint64_t sink_cap)
      : sc_(std::move(sc)), h_(std::move(h)), body_(std::move(body)), bulk_(std::move(bulk)),
        bulk_len_(bulk_len), sink_addr_(sink_addr), sink_rkey_(sink_rkey), sink_cap_(sink_cap) {}
  pb::Method method() const override { return h_.method(); }
  std::string_view body() const override { return body_; }
  std::string_view bulk() const override {
    return bulk_len_ ? std::string_view(bulk_.data(), bulk_len_) : std::string_view();
  }
  const std::string& peer() const override { return sc_->peer; }
  bool replied() const override { return replied_; }
  char* ReplyBuffer(size_t len) override {
    auto b = rdma::GetRegBuf(sc_->conn->pd(), len);
    reply_buf_ = b.ok() ? std::move(*b) : rdma::RegBuf();
    return reply_buf_ ? reply_buf_.data() : nullptr;
  }

  void Reply(const Status& st, const google::protobuf::Message* response, std::vector<ConstBuf> bulk) override {
    if (replied_) return;
    replied_ = true;
    pb::RpcHeader h;
    h.set_version(kWireVersion);
    h.set_call_id(h_.call_id());
    h.set_method(h_.method());
    h.set_is_response(true);
    std::string body;
    uint64_t total = 0;
    for (const ConstBuf& b : bulk) total += b.len;
    Status out = st;
    bool fits_inline = false;
    if (out.ok()) {
      if (response) body = response->SerializeAsString();
      // (+16: room for bulk_len and body_len, set below.)
      fits_inline = total <= kRdmaInlineBulk &&
                    EncodedSize(h.ByteSizeLong() + 16, body.size(), total, 0) <= kRdmaMaxMessage;
      if (total > 0 && (sink_cap_ != 0 ? total > sink_cap_ : !fits_inline))
        out = Status::Protocol("response bulk of " + std::to_string(total) + " bytes exceeds the buffer");
      if (out.ok() && EncodedSize(h.ByteSizeLong() + 16, body.size(), 0, 0) > kRdmaMaxMessage)
        out = Status(EMSGSIZE, "response body of " + std::to_string(body.size()) +
                                   " bytes exceeds the RDMA message limit");
    }
    if (!out.ok()) {
      h.set_err(out.err());
      h.set_err_msg(out.message());
      body.clear();
      total = 0;
    }
    h.set_body_len(static_cast<uint32_t>(body.size()));
    h.set_bulk_len(total);
    RdmaConn& c = *sc_->conn;
    WrBatch batch;
    std::string inline_bulk;
    rdma::RegBuf staging;
    const bool inl = total > 0 && fits_inline;
    if (inl) {
      for (const ConstBuf& b : bulk) inline_bulk.append(static_cast<const char*>(b.data), b.len);
    } else if (total > 0 && InReplyBuffer(bulk, total)) {
      // Filled in place by the handler: WRITE straight from it.
      if (!c.PostWrite(static_cast<const char*>(bulk[0].data), reply_buf_.lkey(), total, sink_addr_, sink_rkey_, &batch).ok()) return;
    } else if (total > 0) {
      // Staged in registered memory, then one WRITE into the caller's buffer;
      // the SEND after it arrives only once the WRITE has landed (RC order).
      auto buf = rdma::GetRegBuf(c.pd(), total);
      if (!buf.ok()) {
        h.set_err(buf.status().err());
        h.set_err_msg(buf.status().message());
        h.set_bulk_len(0);
        h.set_body_len(0);
        body.clear();
        total = 0;
      } else {
        staging = std::move(*buf);
        rdma::Stats().staged_bytes += total;
        size_t off = 0;
        for (const ConstBuf& b : bulk) {
          std::memcpy(staging.data() + off, b.data, b.len);
          off += b.len;
        }
        if (!c.PostWrite(staging.data(), staging.lkey(), total, sink_addr_, sink_rkey_, &batch).ok()) return;
      }
    }
    // A failed send breaks the connection (the client sees that); either way
    // staging stays valid until every posted request has completed.
    (void)c.Send([&](char* o) { return Encode(o, h, body, inline_bulk, {}, 0, 0, 0); }, &batch);
    batch.Wait();
  }

 private:
  std::shared_ptr<ServerConn> sc_;
  pb::RpcHeader h_;
  std::string body_;
  rdma::RegBuf bulk_;
  size_t bulk_len_;
  uint64_t sink_addr_;
  uint32_t sink_rkey_;
  uint64_t sink_cap_;
  rdma::RegBuf reply_buf_;
  bool replied_ = false;

  bool InReplyBuffer(const std::vector<ConstBuf>& bulk, uint64_t total) const {
    if (!reply_buf_ || bulk.size() != 1) return false;
    const char* p = static_cast<const char*>(bulk[0].data);
    return p >= reply_buf_.data() && p + total <= reply_buf_.data() + reply_buf_.capacity();
  }
};

class RdmaServer : public Server {
 public:
  RdmaServer(int threads, const RdmaOptions& opts) : threads_(threads > 0 ? threads : 8), opts_(opts) {}
  ~RdmaServer() override { Stop(); }

  void Register(pb::Method method, Handler handler) override { handlers_[method] = std::move(handler); }

  Status Start(const std::string& host, uint16_t port) override {
    const std::string where = "RDMA listen on " + host + ":" + std::to_string(port);
    ec_ = rdma_create_event_channel();
    if (!ec_) return Status::FromErrno(errno, where + ": rdma_create_event_channel");
    if (rdma_create_id(ec_, &listen_id_, this, RDMA_PS_TCP) != 0)
      return Status::FromErrno(errno, where + ": rdma_create_id");
    CFS_ASSIGN_OR_RETURN(sockaddr_storage addr, Resolve(host == "" ? "0.0.0.0" : host, port));
    if (rdma_bind_addr(listen_id_, reinterpret_cast<sockaddr*>(&addr)) != 0)
      return Status(errno == EADDRNOTAVAIL || errno == ENODEV ? ENODEV : errno,
                    where + ": no RDMA device has this address (" + std::strerror(errno) + ")");
    if (rdma_listen(listen_id_, 128) != 0) return Status::FromErrno(errno, where + ": rdma_listen");
    port_ = ntohs(rdma_get_src_port(listen_id_));
    if (listen_id_->verbs) {
      Status st = CheckDevice(listen_id_, opts_.device);
      if (!st.ok()) return Status(st.err(), where + ": " + st.message());
    }
    running_ = true;
    for (int i = 0; i < threads_; i++) workers_.emplace_back([this] { WorkLoop(); });
    listener_ = std::thread([this] { ListenLoop(); });
    LOG_INFO("RDMA listening on {}:{}", host, port_);
    return Status::OK();
  }
  uint16_t port() const override { return port_; }

  void Stop() override {
    if (!running_.exchange(false)) return;
    if (listener_.joinable()) listener_.join();
    std::unordered_map<rdma_cm_id*, std::shared_ptr<ServerConn>> conns;
    {
      std::lock_guard<std::mutex> g(mu_);
      conns.swap(conns_);
      stopping_ = true;
      work_cv_.notify_all();
    }
    for (auto& [id, sc] : conns) sc->conn->Break(Status(ECONNRESET, "server stopping"));
    for (auto& t : workers_) t.join();
    workers_.clear();
    conns.clear();
    if (listen_id_) rdma_destroy_id(listen_id_);
    if (ec_) rdma_destroy_event_channel(ec_);
    listen_id_ = nullptr;
    ec_ = nullptr;
  }

 private:
  struct Work {
    std::shared_ptr<ServerConn> sc;
    std::string msg;
  };

  void ListenLoop() {
    pollfd p{ec_->fd, POLLIN, 0};
    while (running_) {
      if (::poll(&p, 1, 100) <= 0) continue;
      rdma_cm_event* ev;
      if (rdma_get_cm_event(ec_, &ev) != 0) continue;
      rdma_cm_id* id = ev->id;
      const rdma_cm_event_type t = ev->event;
      if (t == RDMA_CM_EVENT_CONNECT_REQUEST) {
        Hello want{0, 0};
        if (ev->param.conn.private_data_len >= sizeof want)
          std::memcpy(&want, ev->param.conn.private_data, sizeof want);
        rdma_ack_cm_event(ev);
        Accept(id, want);
        continue;
      }
      rdma_ack_cm_event(ev);
      if (t == RDMA_CM_EVENT_DISCONNECTED || t == RDMA_CM_EVENT_DEVICE_REMOVAL ||
          t == RDMA_CM_EVENT_TIMEWAIT_EXIT) {
        std::shared_ptr<ServerConn> sc;
        {
          std::lock_guard<std::mutex> g(mu_);
          auto it = conns_.find(id);
          if (it != conns_.end()) {
            sc = std::move(it->second);
            conns_.erase(it);
          }
        }
        // Calls in flight keep sc alive; the last one out destroys the QP and id.
        if (sc) sc->conn->Break(Status(ECONNRESET, std::string("peer ") + rdma_event_str(t)));
      }
    }
  }

  void Accept(rdma_cm_id* id, const Hello& want) {
    auto sc = std::make_shared<ServerConn>();
    sc->id = id;
    sockaddr* pa = rdma_get_peer_addr(id);
    char host[64] = "?";
    if (pa && pa->sa_family == AF_INET)
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(pa)->sin_addr, host, sizeof host);
    sc->peer = std::string(host) + ":" + std::to_string(ntohs(rdma_get_dst_port(id)));
    const int depth = want.magic == kMagic && want.depth > 0
                          ? static_cast<int>(std::min<uint32_t>(want.depth, opts_.queue_depth))
                          : opts_.queue_depth;
    Status st = CheckDevice(id, opts_.device);
    std::weak_ptr<ServerConn> weak = sc;
    if (st.ok()) {
      auto conn = RdmaConn::Create(
          id, depth,
          [this, weak](const char* msg, size_t len) {
            if (auto s = weak.lock()) Enqueue(std::move(s), std::string(msg, len));
          },
          nullptr);
      if (conn.ok()) sc->conn = std::move(*conn);
      else st = conn.status();
    }
    if (st.ok()) {
      Hello reply{kMagic, static_cast<uint32_t>(depth)};
      rdma_conn_param param = ConnParam(&reply, id->verbs);
      if (rdma_accept(id, &param) != 0) st = Status::FromErrno(errno, "rdma_accept");
    }
    if (!st.ok()) {
      LOG_WARN("refusing RDMA connection from {}: {}", sc->peer, st.ToString());
      rdma_reject(id, nullptr, 0);
      sc->conn.reset();
      sc->id = nullptr;
      rdma_destroy_id(id);
      return;
    }
    std::lock_guard<std::mutex> g(mu_);
    conns_[id] = std::move(sc);
  }

  // Poller thread: the receive buffer is reposted when this returns, so the
  // message is copied out.
  void Enqueue(std::shared_ptr<ServerConn> sc, std::string msg) {
    std::lock_guard<std::mutex> g(mu_);
    work_.push_back({std::move(sc), std::move(msg)});
    work_cv_.notify_one();
  }

  void WorkLoop() {
    for (;;) {
      Work w;
      {
        std::unique_lock<std::mutex> g(mu_);
        work_cv_.wait(g, [&] { return stopping_ || !work_.empty(); });
        if (work_.empty()) return;
        w = std::move(work_.front());
        work_.pop_front();
      }
      Serve(std::move(w));
    }
  }

  void Serve(Work w) {
    RdmaConn& c = *w.sc->conn;
    auto m = Decode(w.msg);
    if (!m.ok() || m->header.is_response()) {
      LOG_WARN("dropping RDMA connection from {}: {}", w.sc->peer,
               m.ok() ? "unexpected response message" : m.status().ToString());
      c.Break(m.ok() ? Status::Protocol("unexpected response") : m.status());
      return;
    }
    const uint64_t bulk_len = m->header.bulk_len();
    rdma::RegBuf bulk;
    if (bulk_len > 0) {
      auto b = rdma::GetRegBuf(c.pd(), bulk_len);
      if (!b.ok()) {
        LOG_ERROR("RDMA request from {}: {}", w.sc->peer, b.status().ToString());
        c.Break(b.status());
        return;
      }
      bulk = std::move(*b);
      if (!m->inline_bulk.empty()) {
        std::memcpy(bulk.data(), m->inline_bulk.data(), m->inline_bulk.size());
      } else {
        // Server-initiated pull of the client's payload.
        WrBatch batch;
        Status st = c.PostReads(m->segs, bulk.data(), bulk.lkey(), &batch);
        Status ws = batch.Wait();
        if (!st.ok() || !ws.ok()) return;  // the connection is broken; the client sees that
      }
    }
    RdmaServerCall call(w.sc, m->header, std::string(m->body), std::move(bulk), bulk_len, m->sink_addr,
                        m->sink_rkey, m->sink_cap);
    auto it = handlers_.find(call.method());
    if (it == handlers_.end()) {
      call.Reply(Status::NotSupported("method " + pb::Method_Name(call.method()) + " is not served here"), nullptr, {});
      return;
    }
    try {
      it->second(call);
    } catch (const std::exception& e) {
      LOG_ERROR("handler {} threw: {}", pb::Method_Name(call.method()), e.what());
      if (!call.replied()) call.Reply(Status::IOError(std::string("internal error: ") + e.what()), nullptr, {});
    }
    if (!call.replied()) call.Reply(Status::IOError("handler did not reply"), nullptr, {});
  }

  const int threads_;
  const RdmaOptions opts_;
  std::unordered_map<int, Handler> handlers_;
  rdma_event_channel* ec_ = nullptr;
  rdma_cm_id* listen_id_ = nullptr;
  uint16_t port_ = 0;
  std::atomic<bool> running_{false};
  std::thread listener_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable work_cv_;
  std::deque<Work> work_;
  bool stopping_ = false;
  std::unordered_map<rdma_cm_id*, std::shared_ptr<ServerConn>> conns_;
};

class RdmaTransport : public Transport {
 public:
  explicit RdmaTransport(RdmaOptions opts) : opts_(std::move(opts)) {}
  std::string name() const override { return "rdma"; }
  Result<std::shared_ptr<Channel>> Connect(const Endpoint& ep, std::chrono::milliseconds timeout) override {
    auto ch = std::make_shared<RdmaChannel>(ep, opts_);
    CFS_RETURN_IF_ERROR(ch->Connect(timeout));
    return std::shared_ptr<Channel>(ch);
  }
  std::unique_ptr<Server> NewServer(int handler_threads) override {
    return std::make_unique<RdmaServer>(handler_threads, opts_);
  }

 private:
  RdmaOptions opts_;
};

// Locked memory one connection needs (its message buffers), times a few
// connections, plus room for bulk buffers.
size_t MemlockNeed(const RdmaOptions& o) {
  return 8 * 2 * static_cast<size_t>(o.queue_depth) * kRdmaMaxMessage + (size_t{16} << 20);
}

}  // namespace

Status RdmaUsable(const RdmaOptions& opts) {
  CFS_RETURN_IF_ERROR(rdma::CheckDevices(opts.device));
  CFS_RETURN_IF_ERROR(rdma::CheckActivePort(opts.device));
  return rdma::CheckMemlock(MemlockNeed(opts));
}

Result<std::shared_ptr<Transport>> NewRdmaTransport(const RdmaOptions& opts) {
  if (opts.queue_depth < 1 || opts.queue_depth > 1024)
    return Status::Invalid("RDMA queue depth must be 1..1024, got " + std::to_string(opts.queue_depth));
  CFS_RETURN_IF_ERROR(RdmaUsable(opts));
  rdma::SetCachedRegistrationLimit(opts.max_registered);
  return std::shared_ptr<Transport>(std::make_shared<RdmaTransport>(opts));
}

}  // namespace cfs::rpc
